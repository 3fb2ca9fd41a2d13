import type { HostStep, ResumePoint } from '../schemas/rollout';

/** A failed boot step is retried from the arming that precedes it: a host only boots after a cycle. */
export function resumeStep(step: HostStep): HostStep {
  return ['power-cycle', 'dhcp', 'ipxe', 'kernel', 'image', 'checkpoint'].includes(step) ? 'arm' : step;
}

/** The innermost message: "Activity task failed" says less than the BMC error it wraps. */
export function rootMessage(err: unknown): string {
  let e: unknown = err;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  return e instanceof Error ? e.message : String(e);
}

/** A step that failed, and where a retry of the host resumes. */
export class StepFailure extends Error {
  constructor(
    readonly at: ResumePoint,
    message: string,
  ) {
    super(message);
  }
}

/** A boot step whose event did not come within its timeout: the host may be power-cycled again. */
export class BootStepMissed extends StepFailure {}
