import { z } from 'zod';
import { ApplyTriggerSchema } from './applied';
import { BmcSchema } from './host';
import { JobSchema } from './jobs';
import { SitePlanSchema } from './plan';

/** The server's orchestration task queue; datacenter work runs on `agentTaskQueue(site)`. */
export const SERVER_TASK_QUEUE = 'vaquero-server';
export function agentTaskQueue(site: string): string {
  return `vaquero-agent-${site}`;
}

export const sha7 = (commit: string) => commit.slice(0, 7);
export const rolloutWorkflowId = (site: string, commit: string) => `rollout/${site}/${sha7(commit)}`;
export const hostWorkflowId = (site: string, host: string, commit: string, attempt = 1) =>
  `host/${site}/${host}/${sha7(commit)}${attempt > 1 ? `/retry-${attempt - 1}` : ''}`;
export const applyWorkflowId = (commit: string) => `apply/${commit}`;

/** The steps of one boot stage of a host, in order. Boot steps wait for events from the agent. */
export const HOST_STEPS = [
  'pre-shutdown',
  'arm',
  'power-cycle',
  'dhcp',
  'ipxe',
  'kernel',
  'checkpoint',
  'disarm',
  'validation',
] as const;
export const HostStepSchema = z.enum(HOST_STEPS);
export type HostStep = z.infer<typeof HostStepSchema>;
export const BOOT_STEPS: readonly HostStep[] = ['dhcp', 'ipxe', 'kernel', 'checkpoint'];

export const BootEventKindSchema = z.enum([
  'dhcp',
  'tftp',
  'ipxe',
  'kernel',
  'initrd',
  'unattended',
  'checkpoint',
]);
export type BootEventKind = z.infer<typeof BootEventKindSchema>;

/** What the agent saw a host do on the boot network; delivered as the `boot-event` signal. */
export const BootEventSchema = z.object({
  kind: BootEventKindSchema,
  mac: z.string(),
  /** The boot stage (1-based) the agent served, when it knows it. */
  stage: z.int().min(1).optional(),
  at: z.string(),
  detail: z.string().optional(),
});
export type BootEvent = z.infer<typeof BootEventSchema>;

/** Where the protocol servers (and the sim BMC) report what a machine did on the boot network. */
export interface BootEventSink {
  emit(event: BootEvent): void;
}

export const StepTimeoutsSchema = z.object({
  dhcp: z.int().min(1),
  ipxe: z.int().min(1),
  kernel: z.int().min(1),
  checkpoint: z.int().min(1),
});
export type StepTimeouts = z.infer<typeof StepTimeoutsSchema>;
export const DEFAULT_STEP_TIMEOUTS: StepTimeouts = {
  dhcp: 5 * 60_000,
  ipxe: 2 * 60_000,
  kernel: 5 * 60_000,
  checkpoint: 30 * 60_000,
};

/** Everything a host's reprovision needs, read from the model revision of its commit. */
export const HostSpecSchema = z.object({
  site: z.string(),
  host: z.string(),
  group: z.string(),
  mac: z.string(),
  ipv4: z.string(),
  bmc: BmcSchema.optional(),
  never_provision: z.boolean(),
  stages: z.array(
    z.object({
      stage: z.int().min(1),
      profile: z.string(),
      preShutdown: z.array(JobSchema),
      validation: z.array(JobSchema),
      /** The kernel is fetched from the agent (so a `kernel` event will come), not from elsewhere. */
      kernelFromAgent: z.boolean(),
    }),
  ),
});
export type HostSpec = z.infer<typeof HostSpecSchema>;

export const ResumePointSchema = z.object({ stage: z.int().min(1), step: HostStepSchema });
export type ResumePoint = z.infer<typeof ResumePointSchema>;

export const ReprovisionHostInputSchema = z.object({
  site: z.string(),
  host: z.string(),
  commit: z.string(),
  attempt: z.int().min(1).default(1),
  resumeFrom: ResumePointSchema.optional(),
  timeouts: StepTimeoutsSchema.optional(),
});
export type ReprovisionHostInput = z.input<typeof ReprovisionHostInputSchema>;

export const JobOutcomeSchema = z.object({
  name: z.string(),
  type: z.string(),
  ok: z.boolean(),
  attempts: z.int(),
  durationMs: z.number(),
  output: z.string(),
  error: z.string().optional(),
});
export type JobOutcome = z.infer<typeof JobOutcomeSchema>;

export const ReprovisionHostResultSchema = z.object({
  host: z.string(),
  ok: z.boolean(),
  /** Where it failed, to resume from on `retry-host`. */
  failedAt: ResumePointSchema.optional(),
  error: z.string().optional(),
  jobs: z.array(JobOutcomeSchema),
  skipped: z.boolean().default(false),
});
export type ReprovisionHostResult = z.infer<typeof ReprovisionHostResultSchema>;

export const SiteRolloutInputSchema = z.object({
  site: z.string(),
  commit: z.string(),
  plan: SitePlanSchema,
  /** A running rollout of an older commit for this site: waited for, and its unfinished hosts taken over. */
  supersedes: z.object({ workflowId: z.string(), commit: z.string() }).optional(),
  timeouts: StepTimeoutsSchema.optional(),
  /** Continue-as-new once the run's history has this many events (tests use a small one). */
  historyLimit: z.int().min(20).optional(),
  /** What an earlier run of this rollout handed over at its continue-as-new. */
  carry: z.lazy(() => RolloutCarrySchema).optional(),
});
export type SiteRolloutInput = z.infer<typeof SiteRolloutInputSchema>;

export const HostProgressSchema = z.object({
  group: z.string(),
  wave: z.int(),
  state: z.enum(['pending', 'running', 'succeeded', 'failed', 'skipped', 'carried-over']),
  step: z.string().optional(),
  failedAt: ResumePointSchema.optional(),
  error: z.string().optional(),
  attempt: z.int(),
});
export type HostProgress = z.infer<typeof HostProgressSchema>;

/**
 * A site rollout's compact state, handed from one run to the next at continue-as-new: host progress,
 * what the signals asked for, and the host workflows still in flight (started with parent close
 * policy ABANDON, so the switch does not end them; the next run waits for their results).
 */
export const RolloutCarrySchema = z.object({
  run: z.int().min(2),
  wave: z.int(),
  paused: z.boolean(),
  approved: z.boolean(),
  retries: z.array(z.string()),
  hosts: z.record(
    z.string(),
    z.lazy(() => HostProgressSchema),
  ),
  inFlight: z.array(z.object({ host: z.string(), workflowId: z.string() })),
});
export type RolloutCarry = z.infer<typeof RolloutCarrySchema>;

/** How a host workflow from an earlier run of the rollout ended, as the next run learns it. */
export const ClosedHostSchema = z.object({
  workflowId: z.string(),
  outcome: z.enum(['succeeded', 'skipped', 'failed', 'cancelled']),
  failedAt: ResumePointSchema.optional(),
  error: z.string().optional(),
});
export type ClosedHost = z.infer<typeof ClosedHostSchema>;

export const RolloutPhaseSchema = z.enum([
  'waiting-previous',
  'running',
  'paused',
  'waiting-approval',
  'waiting-window',
  'halted',
  'aborted',
  'superseded',
  'completed',
]);
export type RolloutPhase = z.infer<typeof RolloutPhaseSchema>;

export const RolloutStatusSchema = z.object({
  site: z.string(),
  commit: z.string(),
  phase: RolloutPhaseSchema,
  wave: z.int(),
  waves: z.int(),
  /** Why the rollout is not moving, in words, when it is not. */
  waitingFor: z.string().optional(),
  /** Which run of the workflow answers (1, then one more per continue-as-new). */
  run: z.int().min(1).optional(),
  /** The run is handing over to the next: hosts start detached from it until it continues as new. */
  switching: z.boolean().optional(),
  counts: z.object({
    total: z.int(),
    pending: z.int(),
    running: z.int(),
    succeeded: z.int(),
    failed: z.int(),
  }),
  hosts: z.record(z.string(), HostProgressSchema),
});
export type RolloutStatus = z.infer<typeof RolloutStatusSchema>;

export const SiteRolloutResultSchema = z.object({
  site: z.string(),
  commit: z.string(),
  phase: RolloutPhaseSchema,
  succeeded: z.array(z.string()),
  failed: z.array(z.string()),
  /** Hosts never started (halt, abort or supersede): a newer rollout takes them over. */
  remaining: z.array(z.string()),
});
export type SiteRolloutResult = z.infer<typeof SiteRolloutResultSchema>;

export const ApplyCommitInputSchema = z.object({
  commit: z.string().regex(/^[0-9a-f]{7,64}$/, 'must be a commit SHA'),
  /** The SoT source declared in the server config (a git repository or a directory). */
  source: z.string(),
  /** The commit the rollouts start from; when absent, the last applied one, else a first deployment. */
  previous: z.string().optional(),
  /** Boot-step timeouts for every host of these rollouts (labs and tests use short ones). */
  timeouts: StepTimeoutsSchema.optional(),
  /** Recorded in the applied history (absent: an apply started before the history was kept). */
  trigger: ApplyTriggerSchema.optional(),
  /** GitHub's X-GitHub-Delivery of the push, recorded in the applied history. */
  delivery: z.string().max(100).optional(),
  /**
   * Apply even when the commit does not descend from the applied one (a force-pushed history, a
   * rollback): an operator's explicit choice, never a webhook's.
   */
  force: z.boolean().optional(),
  /** Passed to each site rollout as its `historyLimit` (tests and benchmarks). */
  rolloutHistoryLimit: z.int().min(20).optional(),
});
export type ApplyCommitInput = z.infer<typeof ApplyCommitInputSchema>;

/** The operator signals of a site rollout, as typed into `temporal workflow signal --name`. */
export const SIGNAL_NAMES = ['pause', 'resume', 'approve', 'abort', 'retry-host'] as const;
