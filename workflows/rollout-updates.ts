import { ApplicationFailure, condition, setHandler, type CancellationScope } from '@temporalio/workflow';

import type { RolloutOutcome, RolloutPhase } from '../schemas/rollout';
import { abortUpdate, approveUpdate, pauseUpdate, resumeUpdate, retryHostUpdate } from './messages';
import type { RolloutState } from './rollout-state';
import { own, sha7 } from '../schemas/runtime';
import { gateHalt } from './rollout-soak';

/** What the operator's Updates read and change of a site rollout. */
export interface Steerable {
  readonly state: RolloutState;
  readonly retries: string[];
  readonly abortScope: CancellationScope;
  paused: boolean;
  approved: boolean;
  aborted: string | undefined;
  supersededBy: string | undefined;
  /** The stored plan is read: until then no host name can be judged. */
  readonly ready: boolean;
  setPhase(phase: RolloutPhase, waitingFor?: string): void;
  /** `run` and `switching`, when the rollout can continue as new. */
  runInfo(): Pick<RolloutOutcome, 'run' | 'switching'>;
}

/** Abort by signal or Update: the hosts in flight are cancelled at their next safe point. */
export function abortRollout(r: Steerable, reason: string | undefined): void {
  r.aborted = reason ?? 'aborted by an operator';
  r.abortScope.cancel();
}

/** The rollout's state as an Update answers it: the status without its hosts. */
export function outcomeOf(r: Steerable): RolloutOutcome {
  const { site, commit, phase, wave, waves, waitingFor, counts } = r.state.status({ limit: 0 });
  return { site, commit, phase, wave, waves, waitingFor, counts, ...r.runInfo() };
}

function refuse(reason: string | undefined): void {
  // A failure of the Update alone: the rollout goes on, the caller reads the reason.
  if (reason)
    throw ApplicationFailure.create({ type: 'RolloutRefused', message: reason, nonRetryable: true });
}

function stoppedReason(r: Steerable): string | undefined {
  if (r.aborted !== undefined)
    return `the rollout is being aborted (${r.aborted}) and takes no more commands`;
  if (r.supersededBy !== undefined)
    return `the rollout is superseded by commit ${sha7(r.supersededBy)}: it only finishes its hosts in flight; steer rollout/${r.state.site}/${sha7(r.supersededBy)} instead`;
  return undefined;
}

function where(r: Steerable): string {
  const { phase, waitingFor } = r.state;
  return `${phase}${waitingFor ? ` (waiting for: ${waitingFor})` : ''}`;
}

function approveReason(r: Steerable): string | undefined {
  const stopped = stoppedReason(r);
  // Soaking (approve cuts it short) or halted by a gate (approve goes on anyway): rollout-soak.ts.
  if (stopped || ['waiting-approval', 'soaking'].includes(r.state.phase) || gateHalt(r)) return stopped;
  if (r.approved) return 'the rollout is already approved';
  if (!r.ready) return 'the rollout is reading its plan: retry in a moment';
  if (!r.state.plan.approval_required)
    return 'the site does not require approval (approval_required: false): there is nothing to approve';
  return `the rollout is not waiting for approval, it is ${where(r)}: approve once its canary succeeded and the phase is waiting-approval`;
}

function retryReason(r: Steerable, host: string): string | undefined {
  const stopped = stoppedReason(r);
  if (stopped || !r.ready) return stopped;
  const entry = own(r.state.hosts, host);
  if (!entry) return `host ${host} is not in this rollout`;
  if (entry.state !== 'failed')
    return `host ${host} is ${entry.state}, not failed: retry-host retries failed hosts only`;
  if (r.retries.includes(host)) return `host ${host} is already waiting to be retried`;
  return undefined;
}

/**
 * Registers the operator's Updates. Each takes effect at once (the phase with it, so that the answer
 * and a status query agree) and answers the new state. An Update that arrives while the run hands
 * over is handled before it continues as new (allHandlersFinished), so its effect is in the carry.
 */
export function setUpdateHandlers(r: Steerable): void {
  const { state } = r;
  setHandler(
    pauseUpdate,
    () => {
      r.paused = true;
      if (state.phase === 'running') r.setPhase('paused', 'resume signal');
      return outcomeOf(r);
    },
    { validator: () => refuse(stoppedReason(r) ?? (r.paused ? 'the rollout is already paused' : undefined)) },
  );
  setHandler(
    resumeUpdate,
    () => {
      r.paused = false;
      if (state.phase === 'paused') r.setPhase('running');
      return outcomeOf(r);
    },
    {
      validator: () =>
        refuse(stoppedReason(r) ?? (r.paused ? undefined : `the rollout is not paused, it is ${where(r)}`)),
    },
  );
  setHandler(
    approveUpdate,
    () => {
      r.approved = true;
      if (r.paused) r.setPhase('paused', 'resume signal');
      else r.setPhase('running');
      return outcomeOf(r);
    },
    { validator: () => refuse(approveReason(r)) },
  );
  setHandler(
    abortUpdate,
    (reason: string | undefined) => {
      abortRollout(r, reason);
      const inFlight = state.inFlight();
      r.setPhase('aborted', inFlight > 0 ? `${inFlight} hosts in flight to stop at a safe point` : undefined);
      return outcomeOf(r);
    },
    {
      validator: (_reason: string | undefined) =>
        refuse(r.aborted === undefined ? undefined : `the rollout is already being aborted (${r.aborted})`),
    },
  );
  setHandler(
    retryHostUpdate,
    async (host) => {
      // Before the stored plan is read no host is known: judged once it is, refused then if need be.
      await condition(() => r.ready);
      refuse(retryReason(r, host));
      r.retries.push(host);
      return outcomeOf(r);
    },
    { validator: (host) => refuse(typeof host === 'string' ? retryReason(r, host) : 'give the host name') },
  );
}
