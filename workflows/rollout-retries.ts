import { condition } from '@temporalio/workflow';
import type { PlannedHost } from '../schemas/plan';
import type { RolloutState } from './rollout-state';

/** What the retry loop needs of a site rollout. */
export interface RetryRollout {
  readonly state: RolloutState;
  readonly retries: string[];
  /** Retries side by side within max_concurrent (patched); older histories retry one at a time. */
  readonly sideBySide: boolean;
  stopping(): boolean;
  planned(host: string): PlannedHost | undefined;
  runHost(planned: PlannedHost): Promise<void>;
}

/** Reprovisions the hosts that `retry-host` names, from the step where each failed. */
export async function retryLoop(r: RetryRollout): Promise<void> {
  if (r.sideBySide) return retrySideBySide(r);
  for (;;) {
    await condition(() => r.retries.length > 0);
    const host = r.retries.shift();
    const planned = host ? r.planned(host) : undefined;
    if (planned) await r.runHost(planned);
  }
}

/** Each retry starts as soon as its group has a slot, beside the others; none once stopping. */
async function retrySideBySide(r: RetryRollout): Promise<void> {
  const { state } = r;
  const startable = () => r.retries.findIndex((h) => state.hasSlot(state.host(h).group));
  for (;;) {
    await condition(() => r.stopping() || startable() >= 0);
    if (r.stopping()) return;
    const [host] = r.retries.splice(startable(), 1);
    const planned = host && state.host(host).state === 'failed' ? r.planned(host) : undefined;
    // A cancelled retry (abort) is accounted for in runHost; nothing waits on its promise.
    if (planned) void r.runHost(planned).catch(() => undefined);
  }
}
