import { checkBootEventBatch } from '../schemas/runtime';
import { log, patched } from '@temporalio/workflow';
import type { BootEvent, BootEventKind } from '../schemas/rollout';

/**
 * Patch id: an event of a later boot step that carries the arming's token (kernel, initrd, the
 * unattended config, the checkpoint) stands for the earlier steps whose events never came. They are
 * lost when the agent that saw them dies before it sent its batch (kill -9 of an agent after the
 * host fetched its script from it: the host goes on at the subnet's other agent). Called only when
 * such an event is what a step waits on, so a run that needs none records no marker.
 */
export const IMPLIED_BOOT_STEPS = 'boot-steps-implied';

/** The order in which a booting host takes its steps; tftp and dhcp are the token-less ones. */
const RANK: Record<BootEventKind, number> = {
  dhcp: 0,
  tftp: 0,
  ipxe: 1,
  kernel: 2,
  initrd: 3,
  unattended: 4,
  image: 5,
  checkpoint: 6,
};

/** Events an agent emits only for a request with the arming's token, which its script handed out. */
const WITH_TOKEN = new Set<BootEventKind>(['kernel', 'initrd', 'unattended', 'image', 'checkpoint']);

/** Whether `event` (already of the right host, stage and time) proves a step of `kind` happened. */
export function impliesStep(event: BootEvent, kind: BootEventKind): boolean {
  return WITH_TOKEN.has(event.kind) && RANK[event.kind] > RANK[kind];
}

/**
 * Whether this run takes implied steps: decided once, the first time a step could use one. Histories
 * from before the change replay without it (the step goes on waiting for its own event).
 */
export function impliedStepsAllowed(run: { impliedSteps?: boolean }): boolean {
  run.impliedSteps ??= patched(IMPLIED_BOOT_STEPS);
  return run.impliedSteps;
}

interface ImplyingRun {
  impliedSteps?: boolean;
  progress: { events: BootEvent[] };
  mark: number;
  target: { host: string };
}

/** The event that stands for a step whose own never came (when the run takes implied steps), logged. */
export function impliedBy(run: ImplyingRun, kind: BootEventKind, implying: (e: BootEvent) => boolean) {
  const event = run.impliedSteps ? run.progress.events.slice(run.mark).find(implying) : undefined;
  if (event)
    log.info('boot step implied by a later one', { host: run.target.host, step: kind, by: event.kind });
  return event;
}

/**
 * Takes a `boot-events` signal's batch into the host's progress. A malformed one is dropped, not
 * thrown: a throwing handler fails every workflow task after.
 */
export function takeBootBatch(
  progress: { events: BootEvent[]; disarmed?: { stage: number; at: string } },
  batch: unknown,
): void {
  const checked = checkBootEventBatch(batch);
  if (!checked.ok) return log.warn('malformed boot-events signal dropped', { error: checked.error });
  progress.events.push(...checked.value.events);
  if (checked.value.disarmed) progress.disarmed = checked.value.disarmed;
}
