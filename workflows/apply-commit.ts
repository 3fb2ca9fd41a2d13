import {
  ApplicationFailure,
  getExternalWorkflowHandle,
  log,
  ParentClosePolicy,
  patched,
  proxyActivities,
  startChild,
  upsertSearchAttributes,
  WorkflowIdReusePolicy,
} from '@temporalio/workflow';
import type { ServerActivities } from '../activities/server-activities';
import type { SitePlan } from '../schemas/plan';
import type { ApplyCommitInput } from '../schemas/rollout';
import { CommitAttribute, PhaseAttribute, SiteAttribute } from '../schemas/search-attributes';
import { supersedeSignal } from './messages';
import { siteRolloutWorkflow } from './site-rollout';
import { rolloutWorkflowId, SERVER_TASK_QUEUE, sha7 } from '../schemas/runtime';

const activities = proxyActivities<ServerActivities>({
  taskQueue: SERVER_TASK_QUEUE,
  startToCloseTimeout: '5 minutes',
  retry: { maximumAttempts: 10 },
});

export interface ApplyCommitResult {
  commit: string;
  rollouts: { site: string; workflowId: string; hosts: number; supersedes?: string }[];
  unchangedSites: string[];
  /** `stale`: refused, not a descendant of the applied commit (`reason` says why); absent before. */
  outcome?: 'applied' | 'stale';
  reason?: string;
}

/** Applies of this release claim the applied pointer in Git order before planning (issue 18). */
export const APPLY_IN_ORDER_PATCH = 'apply-in-order';
/** Applies of this release store each site's plan and pass its key: no payload grows with the site. */
export const PLANS_BY_REFERENCE_PATCH = 'plans-by-reference';

/** What starting a site's rollout needs: the plan itself (older histories) or its stored key. */
type SiteToRoll = { site: string; hosts: number; waves: number } & ({ plan: SitePlan } | { planKey: string });

type Claimed = { previous: string | null | undefined } | { stale: ApplyCommitResult };

/** Claims the applied pointer, or says why not; then waits for the apply it follows to finish. */
async function claimInOrder(input: ApplyCommitInput): Promise<Claimed> {
  const { commit } = input;
  const order = await activities.claimApplied({
    source: input.source,
    commit,
    force: input.force,
    trigger: input.trigger,
    delivery: input.delivery,
  });
  if (order.status === 'stale') {
    log.warn('apply refused: not a descendant of the applied commit', { commit, applied: order.applied });
    upsertSearchAttributes([{ key: PhaseAttribute, value: 'stale' }]);
    return { stale: { commit, rollouts: [], unchangedSites: [], outcome: 'stale', reason: order.reason } };
  }
  if (order.previous) await activities.awaitApplyClosed({ commit: order.previous });
  return { previous: input.previous ?? order.previous ?? null };
}

/**
 * Applies one SoT commit: fetch at the SHA, validate, store the model revision, plan, and start (or
 * supersede) each changed site's rollout. Its workflow id is `apply/<sha>`, so a redelivered webhook
 * starts nothing new.
 */
export async function applyCommitWorkflow(input: ApplyCommitInput): Promise<ApplyCommitResult> {
  const { commit } = input;
  upsertSearchAttributes([{ key: CommitAttribute, value: commit }]);
  const prepared = await activities.prepareCommit({ source: input.source, commit });
  if (!prepared.valid) {
    upsertSearchAttributes([{ key: PhaseAttribute, value: 'invalid' }]);
    throw ApplicationFailure.create({
      type: 'InvalidSourceOfTruth',
      message: `commit ${sha7(commit)} is not a valid source of truth (${prepared.problemCount} problems):\n${prepared.problems.join('\n')}`,
      nonRetryable: true,
      details: [prepared],
    });
  }
  const inOrder = patched(APPLY_IN_ORDER_PATCH);
  let previous: string | null | undefined = input.previous;
  if (inOrder) {
    const claimed = await claimInOrder(input);
    if ('stale' in claimed) return claimed.stale;
    previous = claimed.previous;
  }
  const sites: SiteToRoll[] = patched(PLANS_BY_REFERENCE_PATCH)
    ? (await activities.planSites({ commit, previous })).sites
    : (await activities.planCommit({ commit, previous })).sites.map((plan) => ({
        site: plan.site,
        hosts: plan.waves.reduce((n, w) => n + w.hosts.length, 0),
        waves: plan.waves.length,
        plan,
      }));
  const result: ApplyCommitResult = { commit, rollouts: [], unchangedSites: [] };
  if (inOrder) result.outcome = 'applied';
  for (const site of sites) {
    const rollout = await rollOutSite(input, site, inOrder);
    if (rollout) result.rollouts.push(rollout);
    else result.unchangedSites.push(site.site);
  }
  // Claimed before planning on this release; marked only now on the one the history was recorded on.
  if (!inOrder) await activities.markApplied({ commit });
  upsertSearchAttributes([{ key: PhaseAttribute, value: 'applied' }]);
  return result;
}

/** Supersedes the site's active rollout and starts this commit's; undefined when no host changes. */
async function rollOutSite(
  input: ApplyCommitInput,
  site: SiteToRoll,
  inOrder: boolean,
): Promise<ApplyCommitResult['rollouts'][number] | undefined> {
  const { commit } = input;
  const { hosts } = site;
  if (hosts === 0) return undefined;
  const workflowId = rolloutWorkflowId(site.site, commit);
  const active = await activities.getActiveRollout({ site: site.site });
  let supersedes: { workflowId: string; commit: string } | undefined;
  if (active && active.workflowId !== workflowId) {
    try {
      await getExternalWorkflowHandle(active.workflowId).signal(supersedeSignal, commit);
      supersedes = active;
    } catch (err) {
      log.info('previous rollout already closed', { workflowId: active.workflowId, error: String(err) });
    }
  }
  const start = startChild(siteRolloutWorkflow, {
    workflowId,
    args: [
      {
        site: site.site,
        commit,
        ...('planKey' in site ? { planKey: site.planKey } : { plan: site.plan }),
        supersedes,
        timeouts: input.timeouts,
        ...(input.rolloutHistoryLimit ? { historyLimit: input.rolloutHistoryLimit } : {}),
      },
    ],
    parentClosePolicy: ParentClosePolicy.ABANDON,
    workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
    staticSummary: `roll ${sha7(commit)} out to ${site.site}: ${hosts} hosts in ${site.waves} waves`,
    typedSearchAttributes: [
      { key: SiteAttribute, value: site.site },
      { key: CommitAttribute, value: commit },
    ],
  });
  // A rerun of a failed apply finds the rollouts its first run started: they stand.
  await start.catch((err: unknown) => {
    // @temporalio/common's class, which workflow code does not import: known by its name.
    if (!(inOrder && (err as Error).name === 'WorkflowExecutionAlreadyStartedError')) throw err;
  });
  await activities.setActiveRollout({ site: site.site, workflowId, commit });
  return { site: site.site, workflowId, hosts, supersedes: supersedes?.workflowId };
}
