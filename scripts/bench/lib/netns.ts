// Two network namespaces joined by a veth for the protocol benchmarks: the server side (`s`, 10.213.0.1)
// and the client side (`c`, 10.213.0.2). Nothing touches the root namespace: the veth is created inside
// the server namespace. Deletion runs in `close()`, and again from an `exit` hook (also reached on
// SIGINT, SIGTERM and uncaught errors), so a crashed benchmark leaves no namespace behind.
import { execFile, execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const SERVER_IP = '10.213.0.1';
export const CLIENT_IP = '10.213.0.2';
export const PREFIX_LEN = 16;

export interface BenchNet {
  server: string;
  client: string;
  ifServer: string;
  ifClient: string;
  /** Runs a command in a namespace to completion; rejects on a non-zero exit. */
  exec(
    ns: string,
    cmd: string,
    args: string[],
    timeoutMs?: number,
  ): Promise<{ stdout: string; stderr: string }>;
  /** Starts a long-running command in a namespace; killed by `close()` if still running. */
  spawn(ns: string, cmd: string, args: string[], opts?: SpawnOptions): ChildProcess;
  close(): Promise<void>;
}

const live = new Set<{ names: string[]; children: ChildProcess[] }>();
const tempDirs = new Set<string>();
let hooked = false;

/** Removes `dir` from the exit hook too: an interrupted benchmark leaves no temporary files either. */
export function removeOnExit(dir: string): void {
  hookExit();
  tempDirs.add(dir);
}

function cleanupSync(): void {
  for (const entry of live) {
    for (const child of entry.children)
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    for (const ns of entry.names) {
      try {
        execFileSync('ip', ['netns', 'delete', ns], { stdio: 'ignore', timeout: 5_000 });
      } catch {
        // Already gone.
      }
    }
  }
  live.clear();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.once('exit', cleanupSync);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      cleanupSync();
      process.exit(130);
    });
  }
}

/** Why namespaces cannot be used here, or undefined. */
export async function netnsProblem(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  try {
    await run('ip', ['netns', 'list'], { timeout: 5_000 });
    return undefined;
  } catch {
    return 'ip netns is not available (apt-get install iproute2)';
  }
}

/** Creates the pair with `h3-<random>-s` / `h3-<random>-c` names; always call `close()` in a finally. */
export async function createBenchNet(tag = 'h3'): Promise<BenchNet> {
  hookExit();
  const id = randomBytes(3).toString('hex');
  const server = `${tag}-${id}-s`;
  const client = `${tag}-${id}-c`;
  // Interface names are limited to 15 characters.
  const ifServer = `${tag}${id}s`;
  const ifClient = `${tag}${id}c`;
  const entry = { names: [server, client], children: [] as ChildProcess[] };
  live.add(entry);
  const ip = (args: string[]) => run('ip', args, { timeout: 10_000 });
  const close = async (): Promise<void> => {
    for (const child of entry.children) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      child.kill('SIGTERM');
      const exited = new Promise((resolve) => child.once('exit', resolve));
      const timer = setTimeout(() => child.kill('SIGKILL'), 2_000);
      await exited;
      clearTimeout(timer);
    }
    await Promise.allSettled(entry.names.map((ns) => ip(['netns', 'delete', ns])));
    live.delete(entry);
  };
  try {
    await ip(['netns', 'add', server]);
    await ip(['netns', 'add', client]);
    await ip([
      '-n',
      server,
      'link',
      'add',
      ifServer,
      'type',
      'veth',
      'peer',
      'name',
      ifClient,
      'netns',
      client,
    ]);
    for (const [ns, ifname, addr] of [
      [server, ifServer, SERVER_IP],
      [client, ifClient, CLIENT_IP],
    ] as const) {
      await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
      await ip(['-n', ns, 'addr', 'add', `${addr}/${PREFIX_LEN}`, 'dev', ifname]);
      await ip(['-n', ns, 'link', 'set', ifname, 'up']);
      // Replies to clients without an address go to 255.255.255.255, which needs a route.
      await ip(['-n', ns, 'route', 'add', '255.255.255.255/32', 'dev', ifname]);
    }
  } catch (err) {
    await close();
    throw err;
  }
  return {
    server,
    client,
    ifServer,
    ifClient,
    // Tracked like `spawn`ed children, so an interrupt kills clients still running in the namespace.
    exec: (ns, cmd, args, timeoutMs = 120_000) =>
      new Promise((resolve, reject) => {
        const child = execFile(
          'ip',
          ['netns', 'exec', ns, cmd, ...args],
          { timeout: timeoutMs, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
          (err, stdout, stderr) => {
            const at = entry.children.indexOf(child);
            if (at >= 0) entry.children.splice(at, 1);
            if (!err) return resolve({ stdout, stderr });
            // Callers read the output of a failed command (perfdhcp exits 3 on drops).
            const failure: Error = Object.assign(err, { stdout, stderr });
            reject(failure);
          },
        );
        entry.children.push(child);
      }),
    spawn: (ns, cmd, args, opts = {}) => {
      const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: 'pipe', ...opts });
      entry.children.push(child);
      return child;
    },
    close,
  };
}

/** Resolves when the child prints `marker` on stdout (or stderr), rejects if it exits first or on timeout. */
export function waitForLine(child: ChildProcess, marker: RegExp, timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (d: Buffer) => {
      seen += d.toString();
      const line = seen.split('\n').find((l) => marker.test(l));
      if (line !== undefined) finish(() => resolve(line));
    };
    const onExit = (code: number | null) =>
      finish(() => reject(new Error(`exited (${code}) before ready:\n${seen.slice(-2000)}`)));
    const timer = setTimeout(
      () => finish(() => reject(new Error(`not ready after ${timeoutMs} ms:\n${seen.slice(-2000)}`))),
      timeoutMs,
    );
    const finish = (then: () => void) => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
      then();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
  });
}

/** Keeps reading a child's output so a full pipe never blocks it; returns the last bytes for errors. */
export function drain(child: ChildProcess): () => string {
  let tail = '';
  const keep = (d: Buffer) => {
    tail = (tail + d.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return () => tail;
}
