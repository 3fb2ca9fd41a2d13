import {
  ApplicationFailure,
  ChildWorkflowFailure,
  ParentClosePolicy,
  startChild,
} from '@temporalio/workflow';
import type { PlannedHost } from '../schemas/plan';
import type { ReprovisionHostResult, ResumePoint, SiteRolloutInput } from '../schemas/rollout';
import { HostGroupAttribute } from '../schemas/search-attributes';
import { reprovisionHostWorkflow, reprovisionHostWorkflowV2 } from './reprovision-host';
import type { RunningHost } from './rollout-switch';

/** What a failed host workflow said: where it failed and why. */
export function failureOf(err: unknown): { failedAt?: ResumePoint; error: string } {
  if (err instanceof ChildWorkflowFailure && err.cause instanceof ApplicationFailure) {
    const result = err.cause.details?.[0] as ReprovisionHostResult | undefined;
    return { failedAt: result?.failedAt, error: result?.error ?? err.cause.message };
  }
  return { error: err instanceof Error ? err.message : String(err) };
}

/** What starting a host as a child needs of its rollout (rollouts from before hosts-started-by-activity). */
export interface ChildRollout {
  readonly input: SiteRolloutInput;
  readonly hostV2: boolean;
  readonly cancelOnClose: boolean;
}

/** Reprovisions a host in a child workflow of the rollout; throws what the child threw. */
export async function runAsChild(
  r: ChildRollout,
  planned: PlannedHost,
  run: { workflowId: string; attempt: number; resumeFrom?: ResumePoint; detached: boolean },
  running: RunningHost,
): Promise<'skipped' | 'succeeded'> {
  const { input, hostV2 } = r;
  const group = [{ key: HostGroupAttribute, value: planned.group }];
  const child = await startChild(hostV2 ? reprovisionHostWorkflowV2 : reprovisionHostWorkflow, {
    ...(hostV2 ? { typedSearchAttributes: group } : {}),
    workflowId: run.workflowId,
    args: [
      {
        site: input.site,
        host: planned.host,
        commit: input.commit,
        attempt: run.attempt,
        resumeFrom: run.resumeFrom,
        timeouts: input.timeouts,
      },
    ],
    staticSummary: `reprovision ${input.site}/${planned.host} (${planned.group}) for ${input.commit.slice(0, 7)}`,
    staticDetails: `Why: ${planned.reasons.join(', ')}`,
    ...(r.cancelOnClose
      ? { parentClosePolicy: run.detached ? ParentClosePolicy.ABANDON : ParentClosePolicy.REQUEST_CANCEL }
      : {}),
  });
  running.started = true;
  const result = await child.result();
  return result.skipped ? 'skipped' : 'succeeded';
}
