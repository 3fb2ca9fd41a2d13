import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/common';
import { rolloutWorkflowId } from '../../schemas/rollout';
import { CommitAttribute, SiteAttribute } from '../../schemas/search-attributes';
import type { Log } from '../http/log';

/** How often each server worker looks for host workflows whose rollout is gone. */
export const ORPHAN_SWEEP_MS = 5_000;
/**
 * Every this many sweeps (and the first), every running host workflow is looked at: a rollout
 * deleted outright leaves no closed record to find, and visibility may miss one. The sweeps in
 * between only look at rollouts that closed since the last one (issue 12: at 10,000 hosts with
 * 1,000 in flight, listing every running host each 5 s was 1,000 rows per server per sweep).
 */
export const FULL_SWEEP_EVERY = 12;
/** Rollouts closed this long before the previous sweep began are looked at again (visibility lag). */
const CLOSE_MARGIN_MS = 60_000;

const RUNNING_HOSTS = 'WorkflowType = "reprovisionHostWorkflowV2" AND ExecutionStatus = "Running"';

/** Running host workflows by the id of the rollout that started them (by their site and commit). */
async function runningHostsByRollout(client: Client, query: string): Promise<Map<string, string[]>> {
  const byRollout = new Map<string, string[]>();
  for await (const info of client.workflow.list({ query })) {
    const site = info.typedSearchAttributes.get(SiteAttribute);
    const commit = info.typedSearchAttributes.get(CommitAttribute);
    // A host started as a child (older rollouts) or by hand: its parent close policy or its operator decides.
    if (!site || !commit) continue;
    const rollout = rolloutWorkflowId(site, commit);
    byRollout.set(rollout, [...(byRollout.get(rollout) ?? []), info.workflowId]);
  }
  return byRollout;
}

/** The running hosts of the rollouts that closed since `since`: one list, then one per such rollout. */
async function hostsOfClosedRollouts(client: Client, since: string): Promise<Map<string, string[]>> {
  const after = new Date(Date.parse(since) - CLOSE_MARGIN_MS).toISOString();
  const closed =
    `WorkflowType = "siteRolloutWorkflow" AND ExecutionStatus != "Running" ` +
    `AND CloseTime >= ${JSON.stringify(after)}`;
  const byRollout = new Map<string, string[]>();
  for await (const info of client.workflow.list({ query: closed })) {
    const site = info.typedSearchAttributes.get(SiteAttribute);
    const commit = info.typedSearchAttributes.get(CommitAttribute);
    if (!site || !commit || byRollout.has(info.workflowId)) continue;
    const ours = `${RUNNING_HOSTS} AND ${SiteAttribute.name} = ${JSON.stringify(site)} AND ${CommitAttribute.name} = ${JSON.stringify(commit)}`;
    for (const [rollout, hosts] of await runningHostsByRollout(client, ours))
      byRollout.set(rollout, [...(byRollout.get(rollout) ?? []), ...hosts]);
  }
  return byRollout;
}

/**
 * Cancels the running host workflows whose site rollout is no longer running (terminated or reset
 * away by an operator, or deleted), so that each disarms its host: hosts are started by activity
 * and are no children of the rollout, so no parent close policy does it (issue 12). A rollout
 * that could not be described this time is left alone until the next sweep. With `since`, only
 * rollouts closed since then are looked at; without, every running host workflow. Returns the ids
 * cancelled.
 */
export async function sweepOrphanHosts(client: Client, log?: Log, since?: string): Promise<string[]> {
  const byRollout =
    since === undefined
      ? await runningHostsByRollout(client, RUNNING_HOSTS)
      : await hostsOfClosedRollouts(client, since);
  const cancelled: string[] = [];
  for (const [rollout, hosts] of byRollout) {
    // A reset rollout closed one run and runs on in another: its hosts are still its own.
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

/**
 * Sweeps every `intervalMs` until `close`: a full sweep first and every FULL_SWEEP_EVERY-th time,
 * the rollouts closed since the previous sweep in between. A sweep that fails is logged, and the
 * next one looks back to the last sweep that did not.
 */
export function sweepOrphansEvery(deps: { client: Client; log?: Log; intervalMs?: number }): {
  close(): Promise<void>;
} {
  let running: Promise<unknown> = Promise.resolve();
  let busy = false;
  let count = 0;
  let since: string | undefined;
  const timer = setInterval(() => {
    // A sweep slower than the interval (a slow visibility store) skips ticks instead of queueing them.
    if (busy) return;
    busy = true;
    running = running.then(async () => {
      const began = new Date().toISOString();
      const full = count++ % FULL_SWEEP_EVERY === 0 || since === undefined;
      try {
        await sweepOrphanHosts(deps.client, deps.log, full ? undefined : since);
        since = began;
      } catch (err) {
        deps.log?.warn({ error: (err as Error).message }, 'orphan host sweep failed');
      } finally {
        busy = false;
      }
    });
  }, deps.intervalMs ?? ORPHAN_SWEEP_MS);
  timer.unref();
  return {
    async close() {
      clearInterval(timer);
      await running;
    },
  };
}
