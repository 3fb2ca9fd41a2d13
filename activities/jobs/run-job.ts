import { setTimeout as delay } from 'node:timers/promises';
import { durationMs } from '../../schemas/common';
import type { Job } from '../../schemas/jobs';
import { runCommandJob } from './command-job';
import { runContainerJob } from './container-job';
import { JobError } from './errors';
import { runHttpJob } from './http-job';
import { runSshJob } from './ssh-job';
import { runTcpJob } from './tcp-job';
import type { AttemptResult, JobResult, JobRunnerDeps, JobTarget } from './types';

/** How long a stopped attempt may take to report its output (and kill its processes) before it is left. */
export const ABORT_GRACE_MS = 1000;
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 10_000;

/**
 * Runs one job: each attempt limited by `timeout`, up to `retries` more attempts `retry_delay` apart.
 * A failing job is a result with `ok: false`, never an exception; cancellation via `deps.signal` stops
 * the running attempt promptly and the result says "cancelled".
 */
export async function runJob(job: Job, target: JobTarget, deps: JobRunnerDeps): Promise<JobResult> {
  const now = () => (deps.now ? deps.now() : Date.now());
  const sleep = (ms: number, signal?: AbortSignal) =>
    deps.sleep ? deps.sleep(ms, signal) : defaultSleep(ms, signal);
  const started = now();
  let last: AttemptResult = { ok: false, output: '' };
  let attempts = 0;
  for (let attempt = 1; attempt <= job.retries + 1 && !deps.signal?.aborted; attempt++) {
    attempts = attempt;
    deps.heartbeat?.({ job: job.name, attempt });
    last = await runAttempt(job, target, deps, attempt);
    if (last.ok || last.retryable === false || deps.signal?.aborted) break;
    if (attempt <= job.retries) {
      try {
        await sleep(durationMs(job.retry_delay), deps.signal);
      } catch (err) {
        if (!deps.signal?.aborted) throw err;
      }
    }
  }
  if (!last.ok && deps.signal?.aborted) last = { ok: false, output: last.output, error: 'cancelled' };
  const result: JobResult = {
    name: job.name,
    type: job.type,
    ok: last.ok,
    attempts,
    durationMs: now() - started,
    output: last.output,
  };
  if (!last.ok) result.error = last.error ?? 'failed';
  return result;
}

/** Runs jobs one after another and stops at the first that fails; returns the results of those run. */
export async function runJobs(
  jobs: readonly Job[],
  target: JobTarget,
  deps: JobRunnerDeps,
): Promise<JobResult[]> {
  const results: JobResult[] = [];
  for (const job of jobs) {
    const result = await runJob(job, target, deps);
    results.push(result);
    if (!result.ok) break;
  }
  return results;
}

type Settled = { value: AttemptResult } | { error: unknown };

async function runAttempt(
  job: Job,
  target: JobTarget,
  deps: JobRunnerDeps,
  attempt: number,
): Promise<AttemptResult> {
  const controller = new AbortController();
  let stopReason: 'timeout' | 'cancelled' | undefined;
  let onStop = () => {};
  const stopped = new Promise<void>((resolve) => (onStop = resolve));
  const stop = (why: 'timeout' | 'cancelled') => {
    if (stopReason) return;
    stopReason = why;
    controller.abort();
    onStop();
  };
  const onCancel = () => stop('cancelled');
  const timer = setTimeout(() => stop('timeout'), durationMs(job.timeout));
  deps.signal?.addEventListener('abort', onCancel, { once: true });
  const heartbeat = deps.heartbeat?.bind(deps);
  const beats = heartbeat
    ? setInterval(
        () => heartbeat({ job: job.name, attempt }),
        deps.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS,
      )
    : undefined;
  // Started in a promise chain, so even a runner that throws synchronously reaches the `finally`.
  const running: Promise<Settled> = Promise.resolve()
    .then(() => dispatch(job, target, deps, controller.signal))
    .then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    );
  try {
    const first = await Promise.race([running, stopped.then(() => undefined)]);
    if (first && !stopReason) return 'value' in first ? first.value : fromThrown(first.error);
    // Stopped: the runner kills what it started; wait briefly for it so its output is kept.
    const late = first ?? (await settleWithin(running, ABORT_GRACE_MS));
    if (late && 'value' in late && late.value.ok) return late.value;
    const output = late && 'value' in late ? late.value.output : '';
    if (stopReason === 'timeout') return { ok: false, output, error: `timed out after ${job.timeout}` };
    return { ok: false, output, error: 'cancelled', retryable: false };
  } finally {
    clearTimeout(timer);
    clearInterval(beats);
    deps.signal?.removeEventListener('abort', onCancel);
  }
}

function dispatch(
  job: Job,
  target: JobTarget,
  deps: JobRunnerDeps,
  signal: AbortSignal,
): Promise<AttemptResult> {
  switch (job.type) {
    case 'http':
      return runHttpJob(job, target, deps, signal);
    case 'tcp':
      return runTcpJob(job, target, deps, signal);
    case 'command':
      return runCommandJob(job, target, deps, signal);
    case 'ssh':
      return runSshJob(job, target, deps, signal);
    case 'container':
      return runContainerJob(job, target, deps, signal);
    default: {
      const unknown: never = job;
      throw new Error(`unknown job type ${(unknown as { type: string }).type}`);
    }
  }
}

/** A JobError is the job failing; anything else a runner throws is a bug and escapes. */
function fromThrown(error: unknown): AttemptResult {
  if (error instanceof JobError)
    return { ok: false, output: '', error: error.message, retryable: error.retryable };
  throw error;
}

async function settleWithin(running: Promise<Settled>, ms: number): Promise<Settled | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  try {
    return await Promise.race([running, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return delay(ms, undefined, { signal });
}
