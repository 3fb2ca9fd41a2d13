import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/common';
import { rolloutWorkflowId } from '../../schemas/rollout';
import { CommitAttribute, SiteAttribute } from '../../schemas/search-attributes';
import type { Log } from '../http/log';

/** How often each server worker looks for host workflows whose rollout is gone. */
export const ORPHAN_SWEEP_MS = 5_000;

/**
 * Cancels the running host workflows whose site rollout is no longer running (terminated or reset
 * away by an operator, or deleted), so that each disarms its host: hosts are started by activity
 * and are no children of the rollout, so no parent close policy does it (issue 12). A rollout
 * that could not be described this time is left alone until the next sweep. Returns the ids cancelled.
 */
export async function sweepOrphanHosts(client: Client, log?: Log): Promise<string[]> {
  const query = 'WorkflowType = "reprovisionHostWorkflowV2" AND ExecutionStatus = "Running"';
  const byRollout = new Map<string, string[]>();
  for await (const info of client.workflow.list({ query })) {
    const site = info.typedSearchAttributes.get(SiteAttribute);
    const commit = info.typedSearchAttributes.get(CommitAttribute);
    // A host started as a child (older rollouts) or by hand: its parent close policy or its operator decides.
    if (!site || !commit) continue;
    const rollout = rolloutWorkflowId(site, commit);
    byRollout.set(rollout, [...(byRollout.get(rollout) ?? []), info.workflowId]);
  }
  const cancelled: string[] = [];
  for (const [rollout, hosts] of byRollout) {
    const status = await client.workflow
      .getHandle(rollout)
      .describe()
      .then(
        (d) => d.status.name as string,
        (err: unknown) => (err instanceof WorkflowNotFoundError ? 'NOT_FOUND' : undefined),
      );
    if (status === undefined || status === 'RUNNING') continue;
    log?.warn(
      { rollout, status, hosts: hosts.length },
      'cancelling the host workflows of a rollout that is gone',
    );
    await Promise.all(
      hosts.map((id) =>
        client.workflow
          .getHandle(id)
          .cancel()
          .then(() => cancelled.push(id))
          .catch(() => undefined),
      ),
    );
  }
  return cancelled;
}

/** Sweeps every `intervalMs` until `close`; a sweep that fails is logged and tried again next time. */
export function sweepOrphansEvery(deps: { client: Client; log?: Log; intervalMs?: number }): {
  close(): Promise<void>;
} {
  let running: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    running = running
      .then(() => sweepOrphanHosts(deps.client, deps.log))
      .catch((err: unknown) => deps.log?.warn({ error: (err as Error).message }, 'orphan host sweep failed'));
  }, deps.intervalMs ?? ORPHAN_SWEEP_MS);
  timer.unref();
  return {
    async close() {
      clearInterval(timer);
      await running;
    },
  };
}
