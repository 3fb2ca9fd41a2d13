import { z } from 'zod';
import { ApplyTriggerSchema } from './applied';
import { BmcSchema } from './host';
import { JobSchema } from './jobs';
import { GroupRulesSchema, PlannedHostSchema, SitePlanSchema } from './plan';
import { BOOT_EVENT_KINDS, HOST_STEPS, MAX_BATCH_EVENTS } from './runtime';
import { PlannedGateSchema } from './gates';

export {
  agentTaskQueue,
  applyWorkflowId,
  BOOT_EVENT_BATCH_MAX_MS,
  BOOT_EVENT_KINDS,
  DEFAULT_STATUS_HOSTS,
  DEFAULT_STEP_TIMEOUTS,
  HOST_STATE_CODES,
  HOST_STEPS,
  hostStateOf,
  hostWorkflowId,
  MAX_BATCH_EVENTS,
  rolloutWorkflowId,
  SERVER_TASK_QUEUE,
  sha7,
} from './runtime';

export const HostStepSchema = z.enum(HOST_STEPS);
export type HostStep = z.infer<typeof HostStepSchema>;
export const BOOT_STEPS: readonly HostStep[] = ['dhcp', 'ipxe', 'kernel', 'checkpoint'];

export const BootEventKindSchema = z.enum(BOOT_EVENT_KINDS);
export type BootEventKind = z.infer<typeof BootEventKindSchema>;

/** What the agent saw a host do on the boot network; delivered as the `boot-event` signal. */
export const BootEventSchema = z.object({
  kind: BootEventKindSchema,
  mac: z.string(),
  /** The boot stage (1-based) the agent served, when it knows it. */
  stage: z.int().min(1).optional(),
  at: z.string(),
  detail: z.string().optional(),
  /**
   * False: a broadcast every agent of the broadcast domain sees (a DISCOVER), kept as evidence and in
   * the logs but not sent to the workflow; the agent the host chose reports its REQUEST.
   */
  reported: z.literal(false).optional(),
});
export type BootEvent = z.infer<typeof BootEventSchema>;

/**
 * A host's boot events of one arming as the agent gathered them over a short window, delivered as one
 * `boot-events` signal: each event keeps its own time, so the history still shows every step.
 */
export const BootEventBatchSchema = z.object({
  events: z.array(BootEventSchema).min(1).max(MAX_BATCH_EVENTS),
  /** The agent disarmed the host itself on this stage's checkpoint (the arm entry asked it to). */
  disarmed: z.object({ stage: z.int().min(1), at: z.string() }).optional(),
});
export type BootEventBatch = z.infer<typeof BootEventBatchSchema>;

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

/** Everything a host's reprovision needs, read from the model revision of its commit. */
export const HostSpecSchema = z.object({
  site: z.string(),
  host: z.string(),
  group: z.string(),
  mac: z.string(),
  ipv4: z.string(),
  bmc: BmcSchema.optional(),
  never_provision: z.boolean(),
  /**
   * Extra power cycles when a boot step misses its timeout (the group's `boot_retries`). Absent in
   * specs loaded before it existed: no retries, as those runs did.
   */
  bootRetries: z.int().min(0).optional(),
  stages: z.array(
    z.object({
      stage: z.int().min(1),
      profile: z.string(),
      preShutdown: z.array(JobSchema),
      validation: z.array(JobSchema),
      /** The kernel is fetched from the agent (so a `kernel` event will come), not from elsewhere. */
      kernelFromAgent: z.boolean(),
      /** The disk image the stage's deploy ramdisk writes: the workflow waits for its result. */
      image: z.object({ checksum: z.string(), disk: z.string() }).optional(),
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
  /**
   * The host's spec at `commit`, given by whoever starts the workflow (startHostWorkflows reads the
   * revision once per batch): the workflow then loads none, one marker and one local activity fewer
   * per host (issue 12). Absent: the workflow loads it itself, as earlier runs did.
   */
  spec: HostSpecSchema.optional(),
});
// The spec as loadHostSpec returns it (defaults filled in), not as a SoT file may leave it out.
export type ReprovisionHostInput = Omit<z.input<typeof ReprovisionHostInputSchema>, 'spec'> & {
  spec?: HostSpec;
};

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
  /** Boot attempts that missed a step and were power-cycled again (the group's `boot_retries`). */
  bootRetries: z
    .array(z.object({ stage: z.int(), attempt: z.int(), missed: HostStepSchema, error: z.string() }))
    .optional(),
});
export type ReprovisionHostResult = z.infer<typeof ReprovisionHostResultSchema>;

export const SiteRolloutInputSchema = z.object({
  site: z.string(),
  commit: z.string(),
  /** The whole plan: rollouts started by releases before plans were stored (see `planKey`). */
  plan: SitePlanSchema.optional(),
  /** Where the plan is stored (schemas/plan.ts planKey): the rollout reads it in parts. */
  planKey: z.string().optional(),
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
  /** Every host's progress: carried by runs from before plans were stored (see `states`). */
  hosts: z
    .record(
      z.string(),
      z.lazy(() => HostProgressSchema),
    )
    .optional(),
  /** The plan this run worked from (a takeover's replan, or the input's). */
  planKey: z.string().optional(),
  /** One character per host in plan order (HOST_STATE_CODES): 50,000 hosts carry in 50 KB. */
  states: z.string().optional(),
  /** What `states` cannot say, per host: an attempt after the first, the step, the failure. */
  extra: z
    .record(
      z.string(),
      z.object({
        attempt: z.int().optional(),
        step: z.string().optional(),
        failedAt: ResumePointSchema.optional(),
        error: z.string().optional(),
      }),
    )
    .optional(),
  inFlight: z.array(z.object({ host: z.string(), workflowId: z.string() })),
  /** Metric gates: the last wave whose gates passed (or were approved past), and a halt by a gate. */
  gates: z.object({ passed: z.int(), halt: z.string().optional() }).optional(),
});
export type RolloutCarry = z.infer<typeof RolloutCarrySchema>;

/** A host's state in one character: carries and results hold one per host, in plan order. */

/** How many hosts a rollout's result reports, from either shape. */
export function resultCounts(r: SiteRolloutResult): { succeeded: number; failed: number; remaining: number } {
  return (
    r.counts ?? {
      succeeded: r.succeeded?.length ?? 0,
      failed: r.failed.length,
      remaining: r.remaining?.length ?? 0,
    }
  );
}

/** A site's stored plan, as the apply reports it: sizes and the key, not the hosts. */
export const PlanSummarySchema = z.object({
  from: z.string(),
  to: z.string(),
  sites: z.array(z.object({ site: z.string(), planKey: z.string(), hosts: z.int(), waves: z.int() })),
});
export type PlanSummary = z.infer<typeof PlanSummarySchema>;

/** Everything of a site plan but its hosts (and the unchanged and removed lists). */
export const SitePlanHeadSchema = SitePlanSchema.pick({
  site: true,
  name: true,
  approval_required: true,
  canary_size: true,
  max_fail: true,
}).extend({
  groups: z.array(GroupRulesSchema),
  waves: z.array(
    z.object({
      index: z.int(),
      canary: z.boolean(),
      groups: z.array(z.string()),
      hosts: z.int(),
      soak: z.string().optional(),
      gates: z.array(PlannedGateSchema).optional(),
    }),
  ),
});
export type SitePlanHead = z.infer<typeof SitePlanHeadSchema>;

/** Hosts of a stored plan from an offset; `next` is where the following part starts. */
export const PlanPartSchema = z.object({
  head: SitePlanHeadSchema.optional(),
  hosts: z.array(PlannedHostSchema.extend({ wave: z.int() })),
  next: z.int().optional(),
});
export type PlanPart = z.infer<typeof PlanPartSchema>;

/** How a host workflow from an earlier run of the rollout ended, as the next run learns it. */
export const ClosedHostSchema = z.object({
  workflowId: z.string(),
  outcome: z.enum(['succeeded', 'skipped', 'failed', 'cancelled']),
  failedAt: ResumePointSchema.optional(),
  error: z.string().optional(),
});
export type ClosedHost = z.infer<typeof ClosedHostSchema>;

/** One host a site rollout asks the server to start a host workflow for (startHostWorkflows). */
export interface HostStartRequest {
  host: string;
  group: string;
  attempt: number;
  resumeFrom?: ResumePoint;
  reasons: string[];
}

export interface StartHostsInput {
  site: string;
  commit: string;
  timeouts?: StepTimeouts;
  hosts: HostStartRequest[];
}

/** A host workflow started (or found running: a retried batch), or why it could not start. */
export interface StartedHost {
  host: string;
  workflowId: string;
  error?: string;
}

export const RolloutPhaseSchema = z.enum([
  'waiting-previous',
  'running',
  'paused',
  'waiting-approval',
  'soaking',
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
  /** The hosts of the page asked for (all of them from rollouts of older releases). */
  hosts: z.record(z.string(), HostProgressSchema),
  /** Which hosts `hosts` holds: `total` is how many match the filter. */
  page: z.object({ offset: z.int(), limit: z.int(), total: z.int() }).optional(),
});
export type RolloutStatus = z.infer<typeof RolloutStatusSchema>;

/** What an operator's Update answers once it took effect: the rollout's new phase and counts, no hosts. */
export const RolloutOutcomeSchema = RolloutStatusSchema.omit({ hosts: true, page: true });
export type RolloutOutcome = z.infer<typeof RolloutOutcomeSchema>;

/** What the `status` query may be asked: a page of hosts, optionally of one state or one host. */
export const StatusPageSchema = z.object({
  offset: z.int().min(0).optional(),
  limit: z.int().min(0).max(5_000).optional(),
  state: HostProgressSchema.shape.state.optional(),
  host: z.string().optional(),
});
export type StatusPage = z.infer<typeof StatusPageSchema>;
/** Hosts in a status answer when no page is asked for: a query answer stays far below 2 MB. */

export const SiteRolloutResultSchema = z.object({
  site: z.string(),
  commit: z.string(),
  phase: RolloutPhaseSchema,
  /** Listed by rollouts of older releases; newer ones give `counts` and `states`. */
  succeeded: z.array(z.string()).optional(),
  failed: z.array(z.string()),
  /** Hosts never started (halt, abort or supersede): a newer rollout takes them over. */
  remaining: z.array(z.string()).optional(),
  counts: z.object({ succeeded: z.int(), failed: z.int(), remaining: z.int() }).optional(),
  planKey: z.string().optional(),
  /** Each host's final state in plan order (HOST_STATE_CODES), read with the plan under `planKey`. */
  states: z.string().optional(),
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
