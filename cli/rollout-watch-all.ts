// `vaquero rollout watch` without a rollout: every running rollout, and those that start later,
// until Ctrl-C. It is what `vaquero lab up` tells its user to run: the lab's first rollout may not
// have started yet, and each commit to the lab's SoT starts another.
import { setTimeout as delay } from 'node:timers/promises';
import type { WorkflowExecutionInfo } from '@temporalio/client';
import type { SiteRolloutResult } from '../schemas/rollout';
import type { Io } from './io';
import { listRollouts, temporalError, type Rollout, type Temporal } from '../server/rollouts/rollout-client';
import { statusText, type StatusView } from './rollout-format';
import {
  CLEAR_SCREEN,
  clock,
  closedLine,
  FINAL_QUERY_TIMEOUT_MS,
  printer,
  view,
  type Closed,
} from './rollout-watch';

/** How many "closed" lines stay at the foot of a terminal's screen. */
const CLOSED_SHOWN = 5;

interface Followed {
  rollout: Rollout;
  closing: Promise<Closed>;
  closed?: Closed;
  /** The last status it answered, or why it did not. */
  view?: StatusView;
  problem?: string;
  out: ReturnType<typeof printer>;
}

interface Watch {
  t: Temporal;
  io: Io;
  tty: boolean;
  stop: AbortSignal;
  /** By run id: a rollout's id comes again when its commit is applied again. */
  followed: Map<string, Followed>;
  /** Runs seen closing, which visibility may still list as running for a moment. */
  done: Set<string>;
  closedLines: string[];
  listProblem?: string;
  idle: boolean;
}

function oneLine(w: Watch, err: unknown): string {
  const converted = temporalError(err, w.t);
  return converted instanceof Error ? converted.message : String(converted);
}

async function follow(w: Watch, info: WorkflowExecutionInfo): Promise<void> {
  const handle = w.t.client.workflow.getHandle(info.workflowId, info.runId);
  const rollout = { workflowId: info.workflowId, handle, description: await handle.describe() };
  // Ctrl-C must not wait for the long poll behind result().
  const closing = w.t.client
    .withAbortSignal(w.stop, (): Promise<SiteRolloutResult> => handle.result())
    .then(
      (result): Closed => ({ result }),
      (error: unknown): Closed => ({ error }),
    );
  const followed: Followed = { rollout, closing, out: printer(w.io, false, `${info.workflowId}: `) };
  void closing.then((closed) => (followed.closed = closed));
  w.followed.set(info.runId, followed);
}

/** Follows the rollouts that started since the last look. */
async function pickUp(w: Watch): Promise<void> {
  let infos: WorkflowExecutionInfo[];
  try {
    infos = await listRollouts(w.t, {});
  } catch (err) {
    const problem = oneLine(w, err);
    if (!w.tty && problem !== w.listProblem) w.io.out(`${clock()} cannot list the rollouts: ${problem}\n`);
    w.listProblem = problem;
    return;
  }
  w.listProblem = undefined;
  for (const info of infos.reverse()) {
    if (w.followed.has(info.runId) || w.done.has(info.runId)) continue;
    try {
      await follow(w, info);
    } catch {
      // Gone between the list and the describe: the next look decides.
    }
  }
}

async function refresh(w: Watch): Promise<void> {
  for (const f of w.followed.values()) {
    try {
      f.view = await view(w.t, f.rollout);
      f.problem = undefined;
      if (!w.tty) f.out.show(f.view);
    } catch (err) {
      f.problem = oneLine(w, err);
      if (!w.tty) f.out.problem(f.problem);
    }
  }
}

/** Says how each rollout that closed ended, and stops following it. */
async function settle(w: Watch): Promise<void> {
  for (const [runId, f] of w.followed) {
    if (!f.closed) continue;
    try {
      const closedRollout = { ...f.rollout, description: await f.rollout.handle.describe() };
      f.view = await view(w.t, closedRollout, FINAL_QUERY_TIMEOUT_MS);
      if (!w.tty) f.out.show(f.view);
    } catch {
      // The final status is a nicety; how it ended is what counts.
    }
    let line: string;
    try {
      line = closedLine(f.rollout.workflowId, f.closed).line;
    } catch (err) {
      line = `${f.rollout.workflowId} closed: ${oneLine(w, err)}`;
    }
    w.closedLines = [...w.closedLines, `${clock()} ${line}`].slice(-CLOSED_SHOWN);
    if (!w.tty) w.io.out(`${clock()} ${line}\n`);
    w.followed.delete(runId);
    w.done.add(runId);
  }
}

function idleLine(w: Watch): string {
  return `no running rollouts in namespace ${w.t.namespace}; waiting for one to start`;
}

/** A terminal's screen: every followed rollout's status, then the ones that closed. */
function draw(w: Watch, intervalMs: number): void {
  const now = new Date();
  const parts = [...w.followed.values()].map((f) =>
    f.view ? statusText(f.view, now) : `${f.rollout.workflowId}: no status: ${f.problem ?? 'not yet'}\n`,
  );
  if (w.listProblem) parts.push(`cannot list the rollouts: ${w.listProblem}\n`);
  if (parts.length === 0) parts.push(`${idleLine(w)}\n`);
  if (w.closedLines.length > 0) parts.push(`${w.closedLines.join('\n')}\n`);
  const footer = `every ${intervalMs / 1000}s, every running rollout and those that start later; Ctrl-C stops watching (not the rollouts)`;
  w.io.out(`${CLEAR_SCREEN}${parts.join('\n')}\n${footer}\n`);
}

/**
 * Shows every running rollout's status every `intervalMs`, follows rollouts that start later and
 * says how each one that closes ended. Runs until `stop` aborts (Ctrl-C), then returns 0.
 */
export async function watchAllRollouts(
  t: Temporal,
  io: Io,
  options: { intervalMs: number; tty: boolean; stop: AbortSignal },
): Promise<number> {
  const w: Watch = {
    t,
    io,
    tty: options.tty,
    stop: options.stop,
    followed: new Map(),
    done: new Set(),
    closedLines: [],
    idle: false,
  };
  while (!w.stop.aborted) {
    await pickUp(w);
    await refresh(w);
    const idle = w.followed.size === 0 && !w.listProblem;
    if (!w.tty && idle && !w.idle) io.out(`${clock()} ${idleLine(w)} (Ctrl-C stops watching)\n`);
    w.idle = idle;
    if (w.tty) draw(w, options.intervalMs);
    const tick = new AbortController();
    await Promise.race([
      delay(options.intervalMs, undefined, { signal: AbortSignal.any([w.stop, tick.signal]) }).catch(
        () => undefined,
      ),
      ...[...w.followed.values()].map((f) => f.closing),
    ]);
    tick.abort();
    if (!w.stop.aborted) await settle(w);
  }
  return 0;
}
