import { setTimeout as delay } from 'node:timers/promises';
import { WorkflowFailedError } from '@temporalio/client';
import type { SiteRolloutResult } from '../schemas/rollout';
import type { Io } from './io';
import {
  queryStatus,
  runningSteps,
  temporalError,
  type Rollout,
  type Temporal,
} from '../server/rollouts/rollout-client';
import { hostChanges, resultLine, statusText, summaryLine, type StatusView } from './rollout-format';

export const CLEAR_SCREEN = '\x1b[H\x1b[2J';
/** A closed rollout answers its status query only once a worker has replayed it; not worth a long wait. */
export const FINAL_QUERY_TIMEOUT_MS = 3_000;

export type Closed = { result: SiteRolloutResult } | { error: unknown };

/** The time of day on each line `watch` prints into a file or a pipe. */
export function clock(): string {
  return new Date().toTimeString().slice(0, 8);
}

/** "500ms", "2s", "1m", or a number of seconds. */
export function parseInterval(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const ms = m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000;
  return ms >= 100 ? ms : undefined;
}

export async function view(t: Temporal, rollout: Rollout, timeoutMs?: number): Promise<StatusView> {
  const status = await queryStatus(t, rollout.handle, timeoutMs);
  const { description } = rollout;
  return {
    workflowId: rollout.workflowId,
    execution: description.status.name,
    startTime: description.startTime,
    closeTime: description.closeTime,
    status,
    steps: description.status.name === 'RUNNING' ? await runningSteps(t, status) : new Map<string, string>(),
  };
}

/**
 * Prints what changed since the last call: the whole screen on a terminal, else new lines only,
 * each after `prefix` (the rollout's id, when several are watched).
 */
export function printer(io: Io, tty: boolean, prefix = '') {
  let previous: StatusView | undefined;
  let lastSummary = '';
  let lastProblem = '';
  return {
    show(next: StatusView, footer?: string) {
      if (tty) {
        io.out(`${CLEAR_SCREEN}${statusText(next, new Date())}${footer ? `\n${footer}\n` : ''}`);
      } else {
        const summary = summaryLine(next.status);
        if (summary !== lastSummary) io.out(`${clock()} ${prefix}${summary}\n`);
        for (const line of hostChanges(previous, next)) io.out(`${clock()} ${prefix}  ${line}\n`);
        lastSummary = summary;
      }
      previous = next;
      lastProblem = '';
    },
    problem(message: string) {
      if (message !== lastProblem) io.out(`${clock()} ${prefix}no status: ${message}\n`);
      lastProblem = message;
    },
  };
}

export function closedLine(workflowId: string, closed: Closed): { line: string; ok: boolean } {
  if ('result' in closed)
    return { line: resultLine(workflowId, closed.result), ok: closed.result.phase === 'completed' };
  if (closed.error instanceof WorkflowFailedError) {
    const cause = closed.error.cause?.message ?? closed.error.message;
    return { line: `${workflowId} did not complete: ${cause}`, ok: false };
  }
  throw closed.error;
}

/**
 * Shows the rollout's status every `intervalMs` until it closes. Returns 0 when it completed, 1 when
 * it ended any other way (aborted, superseded, terminated).
 */
export async function watchRollout(
  t: Temporal,
  rollout: Rollout,
  io: Io,
  options: { intervalMs: number; tty: boolean },
): Promise<number> {
  const closing: Promise<Closed> = rollout.handle.result().then(
    (result: SiteRolloutResult) => ({ result }),
    (error: unknown) => ({ error }),
  );
  const out = printer(io, options.tty);
  const footer = `every ${options.intervalMs / 1000}s until the rollout closes; Ctrl-C stops watching (not the rollout)`;
  for (;;) {
    try {
      out.show(await view(t, rollout), footer);
    } catch (err) {
      const converted = temporalError(err, t);
      out.problem(converted instanceof Error ? converted.message : String(converted));
    }
    const tick = new AbortController();
    const closed = await Promise.race([
      closing,
      delay(options.intervalMs, undefined, { signal: tick.signal }).catch(() => undefined),
    ]);
    tick.abort();
    if (!closed) continue;
    try {
      const closedRollout = { ...rollout, description: await rollout.handle.describe() };
      out.show(await view(t, closedRollout, FINAL_QUERY_TIMEOUT_MS));
    } catch {
      // The final status is a nicety; the result below is what counts.
    }
    const { line, ok } = closedLine(rollout.workflowId, closed);
    io.out(`${line}\n`);
    return ok ? 0 : 1;
  }
}
