import type { ActivityInterfaceFor, ActivityOptions } from '@temporalio/workflow';
import type { AgentActivities } from '../activities/agent-activities';
import type {
  BootEvent,
  HostSpec,
  JobOutcome,
  ReprovisionHostInput,
  ReprovisionHostResult,
  ResumePoint,
  StepTimeouts,
} from '../schemas/rollout';
import type { BootWatchdog } from './boot-watchdog';

/** A boot attempt that missed a step, as the host's result and status report it. */
export type BootAttempt = NonNullable<ReprovisionHostResult['bootRetries']>[number];

export type Stage = HostSpec['stages'][number];

/** One run of the workflow: its host, its activities and how far it got, shared by its steps. */
export interface HostRun {
  input: ReprovisionHostInput;
  target: HostSpec;
  timeouts: StepTimeouts;
  agent: ActivityInterfaceFor<AgentActivities>;
  agentOptions: ActivityOptions;
  jobs: ActivityInterfaceFor<AgentActivities>;
  jobOptions: ActivityOptions;
  workflowId: string;
  /** Boot events as they arrive, and the step in progress (both read by hostStatusQuery). */
  progress: { events: BootEvent[]; current: ResumePoint; disarmed?: { stage: number; at: string } };
  outcomes: JobOutcome[];
  /** Boot events before this index came before the stage's arming. */
  mark: number;
  /** When the event of the stage's last boot step was seen: the next step's must not be earlier. */
  after?: number;
  /** Arm and power cycle run as one activity (FOLDED_STEPS). */
  folded: boolean;
  /** Batches, one watchdog, disarm by the agent (BATCHED). */
  batched: boolean;
  /** Whether a change guarded by this id applies: `patched`, or always (reprovisionHostWorkflowV2). */
  patched: (id: string) => boolean;
  watchdog: BootWatchdog;
  /** Whether a later step's event may stand for a missing one (boot-steps.ts); unset until asked. */
  impliedSteps?: boolean;
  /** The stage's boot attempt (1 until a boot step was missed), and the attempts that missed one. */
  boot: { attempt: number; retried: BootAttempt[] };
}
