// Router advertisements on the boot interface: iPXE waits ~13 s for one before it goes on with
// IPv4 (docs/agent.md, `--ra-prefix`). radvd does the protocol; the agent writes its config, runs
// it in the foreground in its own namespace, restarts it if it dies, and stops it with itself.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface RadvdOptions {
  interface: string;
  /** Advertised for SLAAC (`fd77::/64`); without one the RA only ends the clients' wait. */
  prefix?: string;
  /** Holds radvd.conf and radvd.pid. */
  dir: string;
  log: (entry: { level: 'info' | 'warn' | 'error'; msg: string }) => void;
  /** Default: radvd on PATH or in /usr/sbin. */
  binary?: string;
}

export interface Radvd {
  /** The running radvd's pid (changes when it is restarted). */
  pid(): number | undefined;
  stop(): Promise<void>;
}

export class RadvdMissingError extends Error {}

const IFNAME_RE = /^[A-Za-z0-9_.@-]{1,15}$/;
const PREFIX_RE = /^[0-9a-fA-F:]+\/\d{1,3}$/;

/** radvd.conf for one interface: fast adverts, and a router lifetime of 0 (not a default gateway). */
export function radvdConfig(iface: string, prefix?: string): string {
  if (!IFNAME_RE.test(iface)) throw new Error(`bad interface name ${JSON.stringify(iface)}`);
  if (prefix !== undefined && !PREFIX_RE.test(prefix))
    throw new Error(`bad IPv6 prefix ${JSON.stringify(prefix)} (expected like fd77::/64)`);
  const lines = [
    `interface ${iface} {`,
    '  AdvSendAdvert on;',
    '  MinRtrAdvInterval 3;',
    '  MaxRtrAdvInterval 10;',
    '  AdvDefaultLifetime 0;',
  ];
  if (prefix) lines.push(`  prefix ${prefix} {`, '    AdvOnLink on;', '    AdvAutonomous on;', '  };');
  lines.push('};', '');
  return lines.join('\n');
}

function findRadvd(binary?: string): string {
  if (binary) return binary;
  for (const dir of (process.env.PATH ?? '').split(':').concat('/usr/sbin', '/sbin')) {
    const candidate = path.join(dir, 'radvd');
    if (dir && existsSync(candidate)) return candidate;
  }
  throw new RadvdMissingError('router advertisements need radvd (apt-get install radvd)');
}

/**
 * Stops a radvd that a previous agent of this state directory left running: an agent killed with
 * SIGKILL cannot stop its child, and the orphan holds the pid file, so a new radvd would exit at
 * start. Only a process that is radvd with this very config is touched. Returns its pid, if any.
 */
export async function stopOrphanRadvd(dir: string): Promise<number | undefined> {
  const pid = Number((await readFile(path.join(dir, 'radvd.pid'), 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 1) return undefined;
  const conf = path.join(dir, 'radvd.conf');
  if (!isRadvdOf(await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => ''), conf)) return undefined;
  // radvd forks a privileged helper that shares the pid file's lock: every radvd of this config
  // goes, or the new one may find the lock still held ("unable to lock pid file").
  const pids = await radvdsOf(conf);
  const gone = async (ms: number) => {
    for (const deadline = Date.now() + ms; Date.now() < deadline;) {
      if ((await radvdsOf(conf)).length === 0) return true;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return false;
  };
  const signal = (sig: NodeJS.Signals) => {
    for (const p of pids)
      try {
        process.kill(p, sig);
      } catch {
        // Gone in the meantime.
      }
  };
  signal('SIGTERM');
  if (!(await gone(3000))) signal('SIGKILL');
  await gone(1000);
  return pid;
}

const isRadvdOf = (cmdline: string, conf: string) => {
  const argv = cmdline.split('\0');
  return argv.some((a) => path.basename(a) === 'radvd') && argv.includes(conf);
};

/** The pids of the radvd processes (the daemon and its helper) running with this config. */
async function radvdsOf(conf: string): Promise<number[]> {
  const entries = await readdir('/proc').catch(() => [] as string[]);
  const pids: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    if (isRadvdOf(await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => ''), conf))
      pids.push(Number(entry));
  }
  return pids;
}

/**
 * One radvd process, restarted with a backoff (up to 30 s) when it exits; `launch` resolves once it
 * survived its config check.
 */
class RadvdProcess {
  private child: ChildProcess | undefined;
  private stopping = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private failures = 0;

  constructor(
    private readonly binary: string,
    private readonly args: string[],
    private readonly log: RadvdOptions['log'],
  ) {}

  pid(): number | undefined {
    return this.child?.pid;
  }

  launch(): Promise<void> {
    return new Promise((resolve, reject) => {
      const proc = spawn(this.binary, this.args, { stdio: ['ignore', 'ignore', 'pipe'] });
      this.child = proc;
      let stderr = '';
      proc.stderr?.on('data', (d: Buffer) => {
        stderr = (stderr + d.toString()).slice(-2000);
        for (const line of d.toString().split('\n')) {
          if (line.trim()) this.log({ level: 'info', msg: `radvd: ${line.trim()}` });
        }
      });
      proc.once('error', (err) => reject(err));
      proc.once('spawn', () => {
        // radvd checks its config before it starts; a bad one exits within a moment.
        const settle = setTimeout(() => {
          proc.off('exit', early);
          proc.once('exit', this.onExit);
          resolve();
        }, 500);
        const early = (code: number | null) => {
          clearTimeout(settle);
          reject(new Error(`radvd exited at start (${code}): ${stderr.trim().split('\n').pop() ?? ''}`));
        };
        proc.once('exit', early);
      });
    });
  }

  private readonly onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
    this.child = undefined;
    if (this.stopping) return;
    this.failures += 1;
    const delay = Math.min(30_000, 1000 * 2 ** Math.min(this.failures, 5));
    this.log({ level: 'warn', msg: `radvd exited (${code ?? signal}); restarting in ${delay} ms` });
    this.restartTimer = setTimeout(() => {
      this.launch()
        .then(() => (this.failures = 0))
        .catch((err: unknown) => {
          this.log({ level: 'error', msg: `radvd restart failed: ${String(err)}` });
          this.onExit(null, null);
        });
    }, delay);
  };

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const proc = this.child;
    if (!proc || proc.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      const kill = setTimeout(() => proc.kill('SIGKILL'), 3000);
      proc.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      proc.kill('SIGTERM');
    });
  }
}

export async function startRadvd(opts: RadvdOptions): Promise<Radvd> {
  const binary = findRadvd(opts.binary);
  await mkdir(opts.dir, { recursive: true });
  const orphan = await stopOrphanRadvd(opts.dir);
  if (orphan) opts.log({ level: 'warn', msg: `stopped radvd ${orphan} left running by a previous agent` });
  const conf = path.join(opts.dir, 'radvd.conf');
  await writeFile(conf, radvdConfig(opts.interface, opts.prefix));
  const args = [
    '--nodaemon',
    '--config',
    conf,
    '--pidfile',
    path.join(opts.dir, 'radvd.pid'),
    '--logmethod',
    'stderr',
  ];
  const radvd = new RadvdProcess(binary, args, opts.log);
  await radvd.launch();
  opts.log({
    level: 'info',
    msg: `router advertisements on ${opts.interface}${opts.prefix ? ` for ${opts.prefix}` : ''}`,
  });
  return { pid: () => radvd.pid(), stop: () => radvd.stop() };
}
