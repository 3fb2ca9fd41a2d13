import {
  ApplicationFailure,
  getExternalWorkflowHandle,
  log,
  ParentClosePolicy,
  proxyActivities,
  startChild,
  upsertSearchAttributes,
  WorkflowIdReusePolicy,
} from '@temporalio/workflow';
import type { ServerActivities } from '../activities/server-activities';
import { rolloutWorkflowId, SERVER_TASK_QUEUE, sha7, type ApplyCommitInput } from '../schemas/rollout';
import { CommitAttribute, PhaseAttribute, SiteAttribute } from '../schemas/search-attributes';
import { supersedeSignal } from './messages';
import { siteRolloutWorkflow } from './site-rollout';

const activities = proxyActivities<ServerActivities>({
  taskQueue: SERVER_TASK_QUEUE,
  startToCloseTimeout: '5 minutes',
  retry: { maximumAttempts: 10 },
});

export interface ApplyCommitResult {
  commit: string;
  rollouts: { site: string; workflowId: string; hosts: number; supersedes?: string }[];
  unchangedSites: string[];
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
  const plan = await activities.planCommit({ commit, previous: input.previous });
  const result: ApplyCommitResult = { commit, rollouts: [], unchangedSites: [] };
  for (const site of plan.sites) {
    const hosts = site.waves.reduce((n, w) => n + w.hosts.length, 0);
    if (hosts === 0) {
      result.unchangedSites.push(site.site);
      continue;
    }
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
    await startChild(siteRolloutWorkflow, {
      workflowId,
      args: [{ site: site.site, commit, plan: site, supersedes, timeouts: input.timeouts }],
      parentClosePolicy: ParentClosePolicy.ABANDON,
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      staticSummary: `roll ${sha7(commit)} out to ${site.site}: ${hosts} hosts in ${site.waves.length} waves`,
      typedSearchAttributes: [
        { key: SiteAttribute, value: site.site },
        { key: CommitAttribute, value: commit },
      ],
    });
    await activities.setActiveRollout({ site: site.site, workflowId, commit });
    result.rollouts.push({ site: site.site, workflowId, hosts, supersedes: supersedes?.workflowId });
  }
  await activities.markApplied({ commit });
  upsertSearchAttributes([{ key: PhaseAttribute, value: 'applied' }]);
  return result;
}
