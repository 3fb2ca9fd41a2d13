import { log, patched, workflowInfo } from '@temporalio/workflow';
import type { HostStep } from '../schemas/rollout';
import { BootStepMissed, StepFailure } from './host-failure';
import type { HostRun, Stage } from './host-run';

/**
 * Newer runs power-cycle a host again when a boot step misses its timeout, up to the group's
 * `boot_retries`. Checked with the SDK's own patched() even in reprovisionHostWorkflowV2 (which
 * takes every older patch as applied): V2 histories recorded before it fail at the first miss, and
 * must replay so. Checked only at a miss, so a boot that makes every step records no marker.
 */
export const BOOT_RETRIES = 'boot-retries';

/**
 * The power claim of a stage's boot attempt: the agent's ledger cycles a host once per key, so each
 * attempt gets one cycle, no more, even across agent crashes. The first attempt's key is the one
 * runs had before retries existed.
 */
export function powerKey(run: HostRun, stage: Stage): string {
  const base = `${run.workflowId}/${workflowInfo().runId}/stage-${stage.stage}`;
  return run.boot.attempt > 1 ? `${base}/boot-${run.boot.attempt}` : base;
}

/** What the arm and power-cycle activity's summary says of a retried attempt (shown in the UI). */
export function attemptNote(run: HostRun): string {
  const last = run.boot.retried.at(-1);
  if (run.boot.attempt === 1 || !last) return '';
  const of = (run.target.bootRetries ?? 0) + 1;
  return `boot attempt ${run.boot.attempt} of ${of} (attempt ${last.attempt} missed ${last.missed}): `;
}

/**
 * Runs a stage's steps from `first`. A boot step that misses its timeout starts the stage's boot
 * again at `arm` (re-armed, power-cycled under a new claim), up to the host's `bootRetries` times;
 * each retried attempt is kept with the step it missed. Only the last attempt's miss fails the step,
 * its message saying how many attempts there were. Any other failure fails at once, as before.
 */
export async function runStageSteps(
  run: HostRun,
  stage: Stage,
  steps: readonly HostStep[],
  first: number,
  runStep: (step: HostStep) => Promise<void>,
): Promise<void> {
  run.boot.attempt = 1;
  const retries = run.target.bootRetries ?? 0;
  let from = first;
  for (;;) {
    try {
      for (const step of steps.slice(from)) {
        run.progress.current = { stage: stage.stage, step };
        await runStep(step);
      }
      return;
    } catch (err) {
      if (!(err instanceof BootStepMissed)) throw err;
      const { attempt } = run.boot;
      // The patch is asked only when a retry is due: a run without one records no marker.
      if (attempt > retries || !patched(BOOT_RETRIES)) {
        if (attempt === 1) throw err;
        throw new StepFailure(err.at, `${err.message} (boot attempt ${attempt} of ${retries + 1})`);
      }
      run.boot.retried.push({ stage: stage.stage, attempt, missed: err.at.step, error: err.message });
      log.warn('boot step missed: power-cycling again', {
        host: run.target.host,
        stage: stage.stage,
        missed: err.at.step,
        attempt,
        retries,
      });
      // A missed step's watchdog timer has fired: nothing to cancel, only its deadline to forget.
      run.watchdog.stop();
      run.boot.attempt = attempt + 1;
      from = steps.indexOf('arm');
    }
  }
}
