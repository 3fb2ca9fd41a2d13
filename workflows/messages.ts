// Signals, updates and queries, in one file that the server, the agent and the CLI import without workflow code.
// The registered name is what operators type: `temporal workflow signal --name pause --workflow-id ...`.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type {
  BootEvent,
  BootEventBatch,
  ReprovisionHostResult,
  RolloutOutcome,
  RolloutStatus,
  StatusPage,
} from '../schemas/rollout';

/** Stop starting hosts; hosts already being reprovisioned finish. */
export const pauseSignal = defineSignal<[]>('pause');
export const resumeSignal = defineSignal<[]>('resume');
/** Let a rollout that waits after its canary (site policy `approval_required`) go on. */
export const approveSignal = defineSignal<[]>('approve');
/** Stop the rollout: cancel hosts in flight at their next safe point and start no more. */
export const abortSignal = defineSignal<[reason?: string]>('abort');
/** Reprovision a failed host again, from the step where it failed. Input: the host name. */
export const retryHostSignal = defineSignal<[host: string]>('retry-host');
/** Sent by a newer commit's rollout: finish hosts in flight, start no more. Input: the newer commit. */
export const supersedeSignal = defineSignal<[commit: string]>('supersede');
/** Counts and a page of hosts (default: the first 1,000): `--input '{"state":"failed"}'` lists failures. */
// The operator commands again as Updates, under the same names: a validator refuses them in the wrong
// state with the reason, and the caller gets the rollout's new state back (`temporal workflow update
// execute --name approve`). The signals stay for scripts that fire and forget.
export const pauseUpdate = defineUpdate<RolloutOutcome, []>('pause');
export const resumeUpdate = defineUpdate<RolloutOutcome, []>('resume');
export const approveUpdate = defineUpdate<RolloutOutcome, []>('approve');
/** Its reason may be left out (`temporal workflow update execute --name abort` without `--input`). */
export const abortUpdate = defineUpdate<RolloutOutcome, [reason: string]>('abort');
export const retryHostUpdate = defineUpdate<RolloutOutcome, [host: string]>('retry-host');
export const statusQuery = defineQuery<RolloutStatus, [page?: StatusPage]>('status');

/** A DHCP/TFTP/HTTP/checkpoint event of the host, from its site's agent. */
export const bootEventSignal = defineSignal<[event: BootEvent]>('boot-event');
/** The same, several at once: the events of one arming within the agent's short window, in order. */
export const bootEventsSignal = defineSignal<[batch: BootEventBatch]>('boot-events');
export const hostStatusQuery = defineQuery<{
  step: string;
  stage: number;
  events: BootEvent[];
  /** Boot attempts that missed a step and were power-cycled again (the group's `boot_retries`). */
  bootRetries?: NonNullable<ReprovisionHostResult['bootRetries']>;
}>('host-status');
