// The lab's processes: detached, each in its own session with its pid in <state>/run/<name>.pid and
// its output in <state>/run/<name>.log, so `lab up` run again sees what still runs.
import { spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CliError } from '../io';
import { logFile, pidFile, type LabOptions } from './lab-state';

/** The daemon's pid while it runs (a zombie counts as stopped). */
export async function alive(o: LabOptions, name: string): Promise<number | undefined> {
  const pid = Number((await readFile(pidFile(o, name), 'utf8').catch(() => '')).trim());
  if (!pid) return undefined;
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    return /\nState:\tZ/.test(status) ? undefined : pid;
  } catch {
    return undefined;
  }
}

/** Starts a detached process (own session, output to <state>/run/<name>.log) unless it runs. */
export async function daemon(
  o: LabOptions,
  name: string,
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<boolean> {
  if (await alive(o, name)) return false;
  await mkdir(path.join(o.state, 'run'), { recursive: true });
  const log = openSync(logFile(o, name), 'a');
  const [cmd, ...args] = argv as [string, ...string[]];
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', log, log], env, cwd: o.state });
  child.unref();
  await writeFile(pidFile(o, name), `${child.pid}\n`);
  return true;
}

export async function stopDaemon(o: LabOptions, name: string, waitMs = 15_000): Promise<void> {
  const pid = await alive(o, name);
  if (pid) {
    process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + waitMs;
    while ((await alive(o, name)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    if (await alive(o, name)) process.kill(pid, 'SIGKILL');
  }
  await rm(pidFile(o, name), { force: true });
}

export const logSize = async (o: LabOptions, name: string) =>
  (await stat(logFile(o, name)).catch(() => undefined))?.size ?? 0;

/** Waits until a daemon's log, from byte `from`, says `needle`; fails with its tail if it stops. */
export async function waitForLog(o: LabOptions, name: string, needle: string, from = 0): Promise<void> {
  const log = logFile(o, name);
  const deadline = Date.now() + 120_000;
  for (;;) {
    const text = (await readFile(log).catch(() => Buffer.alloc(0))).subarray(from).toString();
    if (text.includes(needle)) return;
    if (!(await alive(o, name)))
      throw new CliError(`${name} stopped; see ${log}:\n${text.split('\n').slice(-15).join('\n')}`);
    if (Date.now() > deadline) throw new CliError(`${name} did not start within 120 s; see ${log}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}
