import { spawn, type ChildProcess } from 'node:child_process';
import { OutputCollector } from './output';

export interface ProcessOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** stdout and stderr in the order they arrived, truncated. */
  output: string;
  /** Set when the program could not be started (not found, not executable). */
  spawnError?: NodeJS.ErrnoException;
  /** The abort signal fired and the process group was killed. */
  aborted: boolean;
}

export interface ProcessOptions {
  signal: AbortSignal;
  /** The whole environment of the process; without it the agent's own is inherited. */
  env?: Record<string, string>;
}

/**
 * Runs a program without a shell in a process group of its own. On abort, and once the program has
 * exited, the whole group is killed: a job's children never outlive it, and a child that keeps the
 * output pipes open cannot hold the attempt forever.
 */
export function runProcess(file: string, args: string[], options: ProcessOptions): Promise<ProcessOutcome> {
  const output = new OutputCollector('ends');
  const { signal } = options;
  if (signal.aborted) return Promise.resolve({ code: null, signal: null, output: '', aborted: true });
  return new Promise((resolve) => {
    let child: ChildProcess;
    let aborted = false;
    try {
      child = spawn(file, args, { env: options.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      resolve({ code: null, signal: null, output: '', spawnError: err as NodeJS.ErrnoException, aborted });
      return;
    }
    const killGroup = () => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // ESRCH: the group is already gone.
      }
    };
    const onAbort = () => {
      aborted = true;
      killGroup();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    child.stdout?.on('data', (chunk: Buffer) => output.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => output.push(chunk));
    child.on('exit', killGroup);
    let spawnError: NodeJS.ErrnoException | undefined;
    child.on('error', (err: NodeJS.ErrnoException) => {
      spawnError = err;
      if (child.pid === undefined) finish(null, null);
    });
    child.on('close', (code: number | null, sig: NodeJS.Signals | null) => finish(code, sig));
    let done = false;
    function finish(code: number | null, sig: NodeJS.Signals | null) {
      if (done) return;
      done = true;
      signal.removeEventListener('abort', onAbort);
      const outcome: ProcessOutcome = { code, signal: sig, output: output.toString(), aborted };
      if (spawnError) outcome.spawnError = spawnError;
      resolve(outcome);
    }
  });
}

/** A one-line account of a finished process that did not succeed. */
export function describeExit(what: string, outcome: ProcessOutcome): string {
  if (outcome.spawnError) {
    const code = outcome.spawnError.code;
    if (code === 'ENOENT') return `${what}: not found`;
    if (code === 'EACCES') return `${what}: not executable (permission denied)`;
    return `${what}: cannot start: ${outcome.spawnError.message}`;
  }
  if (outcome.aborted) return `${what}: stopped`;
  if (outcome.signal) return `${what}: killed by ${outcome.signal}`;
  return `${what}: exited with status ${outcome.code}`;
}
