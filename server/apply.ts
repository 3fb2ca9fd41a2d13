// Starts applyCommitWorkflow as apply/<sha>, once per commit and in Git order: a webhook redelivery
// or a poller that sees the same commit again starts nothing new, whether or not the workflow is
// still kept (the model store's applied history decides), and an older commit is refused.
import { WorkflowExecutionAlreadyStartedError, WorkflowIdReusePolicy, type Client } from '@temporalio/client';
import type { ModelStore } from '../activities/store/model-store';
import type { ApplyTrigger } from '../schemas/applied';
import { applyWorkflowId, SERVER_TASK_QUEUE, type ApplyCommitInput } from '../schemas/rollout';
import { hasCommit, refusedOrder } from '../sot/git-checkout';
import type { applyCommitWorkflow } from '../workflows/apply-commit';
import type { ServerMetrics } from './http/metrics';

export interface ApplyStarted {
  /** `stale`: not a descendant of the applied commit, refused (`reason`); the workflow decides too. */
  status: 'started' | 'duplicate' | 'stale';
  workflowId: string;
  commit: string;
  reason?: string;
}

export interface ApplyDeps {
  temporal: Client;
  metrics?: ServerMetrics;
  /** Absent: only the workflow id tells a duplicate, and the workflow alone checks the order. */
  store?: ModelStore;
}

/** A duplicate or a refusal decided from the store, before anything starts; undefined: start it. */
async function decidedByStore(store: ModelStore, input: ApplyCommitInput): Promise<ApplyStarted | undefined> {
  const { commit } = input;
  const workflowId = applyWorkflowId(commit);
  const applied = await store.getApplied();
  const seen = (await store.getAppliedHistory()).find((e) => e.commit === commit);
  if (applied === commit || (seen && !input.force)) {
    const when = seen
      ? `applied at ${seen.at} (${seen.trigger}${seen.delivery ? ` ${seen.delivery}` : ''})`
      : 'the applied commit';
    return { status: 'duplicate', workflowId, commit, reason: `${commit.slice(0, 7)}: ${when}` };
  }
  // Without the commit here yet, the workflow fetches it and checks the order then.
  if (!applied || input.force || !(await hasCommit(input.source, commit))) return undefined;
  const reason = await refusedOrder(input.source, applied, commit);
  return reason ? { status: 'stale', workflowId, commit, reason } : undefined;
}

export async function startApply(
  deps: ApplyDeps,
  input: Omit<ApplyCommitInput, 'trigger'>,
  trigger: ApplyTrigger,
): Promise<ApplyStarted> {
  const workflowId = applyWorkflowId(input.commit);
  const decided = deps.store ? await decidedByStore(deps.store, { ...input, trigger }) : undefined;
  if (decided) return decided;
  try {
    await deps.temporal.workflow.start<typeof applyCommitWorkflow>('applyCommitWorkflow', {
      taskQueue: SERVER_TASK_QUEUE,
      workflowId,
      // A failed apply (the commit not fetched in time, etcd down) runs again on a redelivery; a
      // completed one only when an operator forces it.
      workflowIdReusePolicy: input.force
        ? WorkflowIdReusePolicy.ALLOW_DUPLICATE
        : WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
      args: [{ ...input, trigger }],
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    return { status: 'duplicate', workflowId, commit: input.commit };
  }
  deps.metrics?.workflowsStarted.inc({ workflow: 'applyCommitWorkflow', trigger });
  return { status: 'started', workflowId, commit: input.commit };
}
