// A pair of network namespaces joined by a veth, created for one test and always deleted after it.
// Nothing here touches the root namespace: the veth is created inside the first namespace.
import { execFile, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface NetnsPair {
  /** Namespace names, `vqd-<random>-a` and `vqd-<random>-b`. */
  a: string;
  b: string;
  /** The veth ends (interface names) in a and b. */
  ifA: string;
  ifB: string;
  /** Runs a command inside a namespace and returns its output; rejects on a non-zero exit. */
  exec(
    ns: string,
    cmd: string,
    args: string[],
    timeoutMs?: number,
  ): Promise<{ stdout: string; stderr: string }>;
  /** Starts a long-running command inside a namespace; it is killed when the test ends. */
  spawn(ns: string, cmd: string, args: string[], opts?: SpawnOptions): ChildProcess;
}

async function ip(args: string[]): Promise<void> {
  await run('ip', args, { timeout: 10_000 });
}

/** Creates the pair and registers its deletion (and the children's) in `t.after`. */
export async function createNetnsPair(t: TestContext): Promise<NetnsPair> {
  const id = randomBytes(3).toString('hex');
  const a = `vqd-${id}-a`;
  const b = `vqd-${id}-b`;
  // Interface names are limited to 15 characters.
  const ifA = `vqd${id}a`;
  const ifB = `vqd${id}b`;
  const children: ChildProcess[] = [];
  t.after(async () => {
    for (const child of children) if (child.exitCode === null && child.pid) child.kill('SIGKILL');
    // Deleting the namespaces removes the veth with them.
    await Promise.allSettled([ip(['netns', 'delete', a]), ip(['netns', 'delete', b])]);
  });
  await ip(['netns', 'add', a]);
  await ip(['netns', 'add', b]);
  await ip(['-n', a, 'link', 'add', ifA, 'type', 'veth', 'peer', 'name', ifB, 'netns', b]);
  for (const [ns, ifname] of [
    [a, ifA],
    [b, ifB],
  ] as const) {
    await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    await ip(['-n', ns, 'link', 'set', ifname, 'up']);
  }
  return {
    a,
    b,
    ifA,
    ifB,
    exec: (ns, cmd, args, timeoutMs = 30_000) =>
      run('ip', ['netns', 'exec', ns, cmd, ...args], { timeout: timeoutMs, encoding: 'utf8' }),
    spawn: (ns, cmd, args, opts = {}) => {
      const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: 'pipe', ...opts });
      children.push(child);
      return child;
    },
  };
}

/** Whether namespaces can be created here (root with iproute2). */
export async function netnsUsable(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  try {
    await run('ip', ['netns', 'list'], { timeout: 5_000 });
    return undefined;
  } catch {
    return 'ip netns is not available (apt-get install iproute2)';
  }
}
