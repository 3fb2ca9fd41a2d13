import { setTimeout as delay } from 'node:timers/promises';
import { CancelledFailure, Context } from '@temporalio/activity';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { ClosedHost, ReprovisionHostResult } from '../schemas/rollout';

/** Ids asked at once per poll: the status of a host workflow is one describe call. */
const CONCURRENCY = 50;

export async function outcomeOf(client: Client, workflowId: string, status: string): Promise<ClosedHost> {
  if (status === 'CANCELED' || status === 'CANCELLED') return { workflowId, outcome: 'cancelled' };
  try {
    const result = (await client.workflow.getHandle(workflowId).result()) as ReprovisionHostResult;
    return { workflowId, outcome: result.skipped ? 'skipped' : 'succeeded' };
  } catch (err) {
    const cause = err instanceof WorkflowFailedError ? err.cause : undefined;
    if (cause instanceof ApplicationFailure) {
      const result = cause.details?.[0] as ReprovisionHostResult | undefined;
      return {
        workflowId,
        outcome: 'failed',
        failedAt: result?.failedAt,
        error: result?.error ?? cause.message,
      };
    }
    return { workflowId, outcome: 'failed', error: `host workflow ${status.toLowerCase()}` };
  }
}

/** Runs `each` over `items` CONCURRENCY at a time (one Temporal call each), results in order. */
export async function inChunks<T, R>(items: readonly T[], each: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += CONCURRENCY)
    out.push(...(await Promise.all(items.slice(i, i + CONCURRENCY).map(each))));
  return out;
}

export async function closedOnce(
  client: Client,
  ids: string[],
): Promise<{ workflowId: string; status: string }[]> {
  const described = await inChunks(ids, (id) =>
    client.workflow
      .getHandle(id)
      .describe()
      .then((d) => ({ workflowId: id, status: d.status.name }))
      // Never started or deleted by retention: nothing will come, so it counts as failed.
      .catch(() => ({ workflowId: id, status: 'NOT_FOUND' })),
  );
  return described.filter((d) => d.status !== 'RUNNING');
}

/** Every this many polls by visibility, each id is described too: visibility may lag or miss one. */
export const SWEEP_EVERY = 30;
/**
 * Host workflows that closed this long before `since` are looked for too: visibility may show a
 * close late. Each poll's rows are every host closed since then, whether already reported or not,
 * and a row costs Temporal about 0.5 ms of CPU (dev server, besides 25 ms per query): at 60 s, a
 * 300-host bench read each host ~30 times, ~20 ms of Temporal CPU per host (issue 12). A close that
 * visibility shows later still is found by the follower's describe sweep (every 5 minutes).
 */
const CLOSE_MARGIN_MS = 15_000;

/**
 * Ids of `ids` whose workflow matches `which` and closed since `since` (less a margin: visibility
 * may lag), by one visibility query instead of one describe per host: 1,000 hosts are one call.
 * `latest` is the latest close time of any row, by Temporal's clock: the next call's `since`, so
 * that the margin covers visibility's lag only, not also the skew between this host's clock and
 * Temporal's.
 */
export async function closedSince(
  client: Client,
  which: string,
  ids: Set<string>,
  since: string,
): Promise<{ closed: { workflowId: string; status: string }[]; latest?: string }> {
  const after = new Date(Date.parse(since) - CLOSE_MARGIN_MS).toISOString();
  const query = `${which} AND ExecutionStatus != "Running" AND CloseTime >= ${JSON.stringify(after)}`;
  const closed: { workflowId: string; status: string }[] = [];
  let latest: number | undefined;
  for await (const info of client.workflow.list({ query })) {
    const at = info.closeTime?.getTime();
    if (at !== undefined && (latest === undefined || at > latest)) latest = at;
    if (ids.has(info.workflowId)) closed.push({ workflowId: info.workflowId, status: info.status.name });
  }
  return { closed, ...(latest !== undefined ? { latest: new Date(latest).toISOString() } : {}) };
}

export interface AwaitHostsInput {
  workflowIds: string[];
  pollMs?: number;
  /** The rollout's workflow id and when the asking run began: closed hosts are found by one query. */
  parent?: string;
  since?: string;
}

/**
 * Waits until at least one of the host workflows has closed and returns how each closed one ended.
 * A continued site rollout learns this way the outcome of hosts that an earlier run started: their
 * completion events went to that run's history, not to the new one.
 */
export async function awaitHostsClosed(client: Client, input: AwaitHostsInput): Promise<ClosedHost[]> {
  const ctx = Context.current();
  const { parent, since } = input;
  const byQuery = parent !== undefined && since !== undefined;
  const pollMs = input.pollMs ?? (byQuery ? 2_000 : Math.max(1_000, input.workflowIds.length * 5));
  const ids = new Set(input.workflowIds);
  for (let poll = 0; ; poll++) {
    const closed =
      byQuery && poll % SWEEP_EVERY !== SWEEP_EVERY - 1
        ? (await closedSince(client, `ParentWorkflowId = ${JSON.stringify(parent)}`, ids, since)).closed
        : await closedOnce(client, input.workflowIds);
    if (closed.length > 0) return Promise.all(closed.map((c) => outcomeOf(client, c.workflowId, c.status)));
    ctx.heartbeat();
    await delay(pollMs, undefined, { signal: ctx.cancellationSignal }).catch(() => {
      throw new CancelledFailure('cancelled while waiting for host workflows');
    });
  }
}
