import { condition } from '@temporalio/workflow';
import type { BootEvent } from '../schemas/rollout';
import { BOOT_EVENT_BATCH_MAX_MS } from '../schemas/runtime';
import { BootStepMissed, StepFailure } from './host-failure';
import type { HostRun, Stage } from './host-run';

/** The detail of the agent's last `image` event of a deploy: the image verified on the disk. */
export const IMAGE_VERIFIED = 'verified ';

/** An `image` event that ends the deploy (progress events say `written <n> bytes`). */
function isResult(e: BootEvent): boolean {
  return e.kind === 'image' && !!e.detail && !e.detail.startsWith('written ');
}

/**
 * The `image` step of a stage whose profile writes a disk image: waits for the deploy ramdisk's
 * result, which the agent checked against the stage's checksum (agent/http/boot-routes.ts). A
 * mismatch or a failed write fails the step with the agent's message ("checksum mismatch: expected …,
 * got …"), not retried: booting again would write the same image. A stage without an image has no
 * such step and takes no command, so histories from before it replay unchanged.
 */
export async function awaitImage(
  run: HostRun,
  stage: Stage,
  /** A silent site's late result (reprovision-host's waitOutSilentSite): true when it came. */
  waitOutSilentSite: (seen: () => boolean, timeoutMs: number) => Promise<boolean>,
): Promise<void> {
  const { target, progress, mark, timeouts } = run;
  const after = run.after;
  const ofStage = (e: BootEvent) =>
    isResult(e) &&
    e.mac === target.mac &&
    (e.stage === undefined || e.stage === stage.stage) &&
    !(after !== undefined && Date.parse(e.at) < after);
  const seen = () => progress.events.slice(mark).some(ofStage);
  const timeoutMs = timeouts.checkpoint;
  const came = run.batched
    ? await run.watchdog.until(seen, Date.now() + timeoutMs + BOOT_EVENT_BATCH_MAX_MS)
    : await condition(seen, timeoutMs);
  if (!came && !(await waitOutSilentSite(seen, timeoutMs)))
    throw new BootStepMissed(
      progress.current,
      `no image result from ${target.mac} within ${Math.round(timeoutMs / 1000)} s`,
    );
  const event = progress.events.slice(mark).find(ofStage);
  const detail = event?.detail ?? '';
  if (!detail.startsWith(IMAGE_VERIFIED)) throw new StepFailure(progress.current, detail);
  if (event) run.after = Date.parse(event.at);
}
