// The operator commands of a site rollout, by the name people type: `vaquero rollout <name>`, the
// HTTP API's POST .../<name>, and `temporal workflow update execute --name <name>` all mean the same
// Update; `temporal workflow signal --name <name>` is its fire-and-forget form.
import { WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import type { z } from 'zod';
import type { SIGNAL_BODIES } from '../../schemas/api';
import {
  hostWorkflowId,
  RolloutOutcomeSchema,
  SERVER_TASK_QUEUE,
  type RolloutOutcome,
  type SIGNAL_NAMES,
  type SiteRolloutResult,
} from '../../schemas/rollout';
import { own } from '../../schemas/common';
import {
  abortUpdate,
  approveUpdate,
  pauseUpdate,
  resumeUpdate,
  retryHostUpdate,
} from '../../workflows/messages';
import { RolloutClientError, RolloutRefusedError } from './errors';
import { queryStatus, type Rollout, type Temporal } from './rollout-client';

export type RolloutCommandName = (typeof SIGNAL_NAMES)[number];

/** What each command carries: abort an optional reason, retry-host the host; the others nothing. */
export type RolloutCommandInputs = { [N in RolloutCommandName]: z.infer<(typeof SIGNAL_BODIES)[N]> };

const updaters: {
  [N in RolloutCommandName]: (handle: WorkflowHandle, input: RolloutCommandInputs[N]) => Promise<unknown>;
} = {
  pause: (handle) => handle.executeUpdate(pauseUpdate),
  resume: (handle) => handle.executeUpdate(resumeUpdate),
  approve: (handle) => handle.executeUpdate(approveUpdate),
  abort: (handle, { reason }) =>
    // By name without input, as `temporal workflow update execute --name abort` sends it.
    reason === undefined
      ? handle.executeUpdate(abortUpdate.name)
      : handle.executeUpdate(abortUpdate, { args: [reason] }),
  'retry-host': (handle, { host }) => handle.executeUpdate(retryHostUpdate, { args: [host] }),
};

/**
 * A failed host of a rollout that completed inside its failure budget: the rollout is closed, so the
 * host is reprovisioned on its own, as the next attempt of its workflow, from the step where it failed.
 */
async function retryAlone(t: Temporal, rollout: Rollout, host: string): Promise<string | undefined> {
  const result = (await rollout.handle.result()) as SiteRolloutResult;
  if (result.phase !== 'completed' || !result.failed.includes(host)) return undefined;
  const status = await queryStatus(t, rollout.handle, undefined, { host }).catch(() => undefined);
  const entry = status ? own(status.hosts, host) : undefined;
  const attempt = (entry?.attempt ?? 1) + 1;
  const input = { site: result.site, host, commit: result.commit, attempt, resumeFrom: entry?.failedAt };
  const command = [
    `temporal workflow start --namespace ${t.namespace} --task-queue ${SERVER_TASK_QUEUE}`,
    `--type reprovisionHostWorkflow --workflow-id ${hostWorkflowId(result.site, host, result.commit, attempt)}`,
    `--input '${JSON.stringify(input)}'`,
  ].join(' ');
  return `${rollout.workflowId} completed with ${host} failed inside its failure budget and is closed, so it takes no retry-host; reprovision ${host} on its own instead: ${command}`;
}

/** Why a closed rollout takes no command, and for a failed host what to do instead. */
async function closedRefusal<N extends RolloutCommandName>(
  t: Temporal,
  rollout: Rollout,
  name: N,
  input: RolloutCommandInputs[N],
): Promise<RolloutRefusedError> {
  const execution = rollout.description.status.name.toLowerCase();
  if (name === 'retry-host' && execution === 'completed') {
    const instead = await retryAlone(t, rollout, (input as RolloutCommandInputs['retry-host']).host);
    if (instead) return new RolloutRefusedError(instead);
  }
  return new RolloutRefusedError(
    `${rollout.workflowId} is closed (${execution}): a closed rollout takes no ${name}`,
  );
}

/**
 * Sends the command as an Update and answers the rollout's new state. A refusal (the rollout's
 * validator, or a closed rollout) is a RolloutRefusedError with the reason in words.
 */
export async function runRolloutCommand<N extends RolloutCommandName>(
  t: Temporal,
  rollout: Rollout,
  name: N,
  input: RolloutCommandInputs[N],
): Promise<RolloutOutcome> {
  if (rollout.description.status.name !== 'RUNNING') throw await closedRefusal(t, rollout, name, input);
  let answer: unknown;
  try {
    answer = await updaters[name](rollout.handle, input);
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError)
      throw new RolloutRefusedError(
        `${rollout.workflowId} refused ${name}: ${err.cause?.message ?? err.message}`,
      );
    // Closed between the look and the Update: say so, as for one closed before.
    const description = await rollout.handle.describe().catch(() => undefined);
    if (description && description.status.name !== 'RUNNING')
      throw await closedRefusal(t, { ...rollout, description }, name, input);
    throw err;
  }
  const parsed = RolloutOutcomeSchema.safeParse(answer);
  if (!parsed.success)
    throw new RolloutClientError(`${rollout.workflowId} answered ${name} with an unknown shape`, 1);
  return parsed.data;
}
