// Starts applyCommitWorkflow as apply/<sha>, once per commit: a webhook redelivery or a poller that
// sees the same commit again starts nothing new.
import { WorkflowExecutionAlreadyStartedError, WorkflowIdReusePolicy, type Client } from '@temporalio/client';
import { applyWorkflowId, SERVER_TASK_QUEUE, type ApplyCommitInput } from '../schemas/rollout';
import type { applyCommitWorkflow } from '../workflows/apply-commit';
import type { ServerMetrics } from './http/metrics';

export interface ApplyStarted {
  status: 'started' | 'duplicate';
  workflowId: string;
  commit: string;
}

export async function startApply(
  deps: { temporal: Client; metrics?: ServerMetrics },
  input: ApplyCommitInput,
  trigger: 'push' | 'poll',
): Promise<ApplyStarted> {
  const workflowId = applyWorkflowId(input.commit);
  try {
    await deps.temporal.workflow.start<typeof applyCommitWorkflow>('applyCommitWorkflow', {
      taskQueue: SERVER_TASK_QUEUE,
      workflowId,
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      args: [input],
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    return { status: 'duplicate', workflowId, commit: input.commit };
  }
  deps.metrics?.workflowsStarted.inc({ workflow: 'applyCommitWorkflow', trigger });
  return { status: 'started', workflowId, commit: input.commit };
}
