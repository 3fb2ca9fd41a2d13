// Network namespaces for the lab, the protocol tests and the benchmarks: `ip` primitives and a pair of
// namespaces joined by a veth whose processes and namespaces go away together. Nothing here touches
// the root namespace: every veth is created inside a namespace.
import { execFile, execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Runs `ip`; a failure names the command and ip's own message. */
export async function ip(args: string[]): Promise<string> {
  try {
    return (await run('ip', args, { timeout: 10_000, encoding: 'utf8' })).stdout;
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim();
    throw new Error(`ip ${args.join(' ')}: ${stderr || (err as Error).message}`);
  }
}

/** Runs a command in a namespace and returns its stdout. */
export async function nsExec(ns: string, cmd: string, args: string[], timeoutMs = 10_000): Promise<string> {
  const { stdout } = await run('ip', ['netns', 'exec', ns, cmd, ...args], {
    timeout: timeoutMs,
    encoding: 'utf8',
  });
  return stdout;
}

/** Why namespaces cannot be used here (not root, no iproute2), or undefined. */
export async function netnsProblem(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  try {
    await run('ip', ['netns', 'list'], { timeout: 5_000 });
    return undefined;
  } catch {
    return 'ip netns is not available (apt-get install iproute2)';
  }
}

export async function namespaceExists(ns: string): Promise<boolean> {
  const list = await ip(['netns', 'list']);
  return list.split('\n').some((line) => line.split(' ')[0] === ns);
}

/** A namespace with its loopback up. */
export async function addNamespace(ns: string): Promise<void> {
  await ip(['netns', 'add', ns]);
  await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
}

/** A veth created inside `ns` as `name`, its peer moved to `peerNs` as `peerName`. */
export async function addVeth(ns: string, name: string, peerNs: string, peerName: string): Promise<void> {
  await ip(['-n', ns, 'link', 'add', name, 'type', 'veth', 'peer', 'name', peerName, 'netns', peerNs]);
}

export async function addBridge(ns: string, bridge: string): Promise<void> {
  await ip(['-n', ns, 'link', 'add', bridge, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
}

export async function linkUp(ns: string, link: string): Promise<void> {
  await ip(['-n', ns, 'link', 'set', link, 'up']);
}

/** An address (CIDR) on a link; an IPv6 one skips duplicate detection. */
export async function addAddress(ns: string, link: string, cidr: string): Promise<void> {
  // Without nodad the address is unusable for a second or two, and iPXE asks right away.
  await ip(['-n', ns, 'addr', 'add', cidr, 'dev', link, ...(cidr.includes(':') ? ['nodad'] : [])]);
}

/** DHCP replies to clients without an address go to 255.255.255.255, which needs a route. */
export async function addBroadcastRoute(ns: string, link: string): Promise<void> {
  await ip(['-n', ns, 'route', 'replace', '255.255.255.255/32', 'dev', link]);
}

export interface ExecResult {
  stdout: string;
  stderr: string;
}

/** Namespaces deleted together, with the processes started in them. */
export interface Namespaces {
  /** Runs a command in a namespace to completion; rejects on a non-zero exit (the error carries its output). */
  exec(ns: string, cmd: string, args: string[], timeoutMs?: number): Promise<ExecResult>;
  /** Starts a long-running command in a namespace; stopped by `close()` if still running. */
  spawn(ns: string, cmd: string, args: string[], opts?: SpawnOptions): ChildProcess;
  /** Stops the processes (SIGTERM, SIGKILL after 2 s) and deletes the namespaces. */
  close(): Promise<void>;
  /** The same at once, for an exit hook: SIGKILL and a synchronous delete. */
  closeSync(): void;
}

const running = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

async function stop(child: ChildProcess): Promise<void> {
  if (!running(child)) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 2_000);
  await exited;
  clearTimeout(timer);
}

/** Creates the namespaces (loopback up); on a failure the ones made are deleted again. */
export async function createNamespaces(names: string[]): Promise<Namespaces> {
  const children: ChildProcess[] = [];
  const untrack = (child: ChildProcess) => {
    const at = children.indexOf(child);
    if (at >= 0) children.splice(at, 1);
  };
  const spaces: Namespaces = {
    // Tracked like `spawn`ed children, so an interrupt kills clients still running in the namespace.
    exec: (ns, cmd, args, timeoutMs = 120_000) =>
      new Promise((resolve, reject) => {
        const child = execFile(
          'ip',
          ['netns', 'exec', ns, cmd, ...args],
          { timeout: timeoutMs, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
          (err, stdout, stderr) => {
            untrack(child);
            if (!err) return resolve({ stdout, stderr });
            // Callers read the output of a failed command (perfdhcp exits 3 on drops).
            const failure: Error = Object.assign(err, { stdout, stderr });
            reject(failure);
          },
        );
        children.push(child);
      }),
    spawn: (ns, cmd, args, opts = {}) => {
      const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: 'pipe', ...opts });
      children.push(child);
      return child;
    },
    async close() {
      await Promise.all(children.map(stop));
      // Deleting a namespace removes its veth ends, bridges and taps with it.
      await Promise.allSettled(names.map((ns) => ip(['netns', 'delete', ns])));
    },
    closeSync() {
      for (const child of children) if (running(child)) child.kill('SIGKILL');
      for (const ns of names) {
        try {
          execFileSync('ip', ['netns', 'delete', ns], { stdio: 'ignore', timeout: 5_000 });
        } catch {
          // Already gone.
        }
      }
    },
  };
  try {
    for (const ns of names) await addNamespace(ns);
  } catch (err) {
    await spaces.close();
    throw err;
  }
  return spaces;
}

export interface NetnsPair extends Namespaces {
  /** Namespace names, `<tag>-<random>-a` and `<tag>-<random>-b`. */
  a: string;
  b: string;
  /** The veth ends (interface names) in a and b. */
  ifA: string;
  ifB: string;
}

export interface NetnsPairOptions {
  /** 2-8 characters: interface names are `<tag><random>a`, at most 15 characters. */
  tag: string;
  /** Addresses (CIDR) of each end; an IPv4 one also gets the broadcast route. */
  a?: string[];
  b?: string[];
}

/** Two namespaces joined by a veth, both ends up; always `close()` it (in a finally or `t.after`). */
export async function createNetnsPair(opts: NetnsPairOptions): Promise<NetnsPair> {
  const id = randomBytes(3).toString('hex');
  const [a, b] = [`${opts.tag}-${id}-a`, `${opts.tag}-${id}-b`];
  const [ifA, ifB] = [`${opts.tag}${id}a`, `${opts.tag}${id}b`];
  const spaces = await createNamespaces([a, b]);
  try {
    await addVeth(a, ifA, b, ifB);
    for (const [ns, link, addresses] of [
      [a, ifA, opts.a ?? []],
      [b, ifB, opts.b ?? []],
    ] as const) {
      for (const cidr of addresses) await addAddress(ns, link, cidr);
      await linkUp(ns, link);
      if (addresses.some((cidr) => !cidr.includes(':'))) await addBroadcastRoute(ns, link);
    }
  } catch (err) {
    await spaces.close();
    throw err;
  }
  return { ...spaces, a, b, ifA, ifB };
}
