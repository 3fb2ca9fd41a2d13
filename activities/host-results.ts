import { setTimeout as delay } from 'node:timers/promises';
import { CancelledFailure, Context } from '@temporalio/activity';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { ClosedHost, ReprovisionHostResult } from '../schemas/rollout';

/** Ids asked at once per poll: the status of a host workflow is one describe call. */
const CONCURRENCY = 50;

async function outcomeOf(client: Client, workflowId: string, status: string): Promise<ClosedHost> {
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

async function closedOnce(client: Client, ids: string[]): Promise<{ workflowId: string; status: string }[]> {
  const closed: { workflowId: string; status: string }[] = [];
  for (let i = 0; i < ids.length; i += CONCURRENCY) {
    const chunk = ids.slice(i, i + CONCURRENCY);
    const described = await Promise.all(
      chunk.map((id) =>
        client.workflow
          .getHandle(id)
          .describe()
          .then((d) => ({ workflowId: id, status: d.status.name }))
          // Never started or deleted by retention: nothing will come, so it counts as failed.
          .catch(() => ({ workflowId: id, status: 'NOT_FOUND' })),
      ),
    );
    closed.push(...described.filter((d) => d.status !== 'RUNNING'));
  }
  return closed;
}

/**
 * Waits until at least one of the host workflows has closed and returns how each closed one ended.
 * A continued site rollout learns this way the outcome of hosts that an earlier run started: their
 * completion events went to that run's history, not to the new one.
 */
export async function awaitHostsClosed(
  client: Client,
  input: { workflowIds: string[]; pollMs?: number },
): Promise<ClosedHost[]> {
  const ctx = Context.current();
  const pollMs = input.pollMs ?? Math.max(1_000, input.workflowIds.length * 5);
  for (;;) {
    const closed = await closedOnce(client, input.workflowIds);
    if (closed.length > 0) return Promise.all(closed.map((c) => outcomeOf(client, c.workflowId, c.status)));
    ctx.heartbeat();
    await delay(pollMs, undefined, { signal: ctx.cancellationSignal }).catch(() => {
      throw new CancelledFailure('cancelled while waiting for host workflows');
    });
  }
}
