// The applied pointer moves forward only: an apply claims it with a compare-and-set against the very
// commit it checked the Git order against, so two applies at once (two servers, a redelivery racing
// a push) cannot both win, and an older commit never replaces a newer one without `force`.
import { ApplicationFailure, Context, log } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { ApplyOrder, ApplyTrigger } from '../schemas/applied';
import { applyWorkflowId } from '../schemas/rollout';
import { refusedOrder } from '../sot/git-checkout';
import type { ModelStore } from './store/model-store';

export interface ClaimInput {
  source: string;
  commit: string;
  force?: boolean;
  trigger?: ApplyTrigger;
  delivery?: string;
}

/** Past this many lost compare-and-sets in one attempt, the activity's retry takes over. */
const CLAIM_TRIES = 20;

export async function claimApplied(store: ModelStore, input: ClaimInput): Promise<ApplyOrder> {
  const { commit } = input;
  for (let i = 0; i < CLAIM_TRIES; i++) {
    const applied = await store.getApplied();
    if (applied === commit) {
      // A rerun of a failed apply that got this far: plan from where it did.
      const [last] = await store.getAppliedHistory();
      return { status: 'current', previous: last?.commit === commit ? last.previous : undefined };
    }
    const refused = applied ? await refusedOrder(input.source, applied, commit) : undefined;
    if (applied && refused && !input.force) {
      log.warn('apply refused: not a descendant of the applied commit', { commit, applied });
      return { status: 'stale', applied, reason: refused };
    }
    const entry = {
      commit,
      at: new Date().toISOString(),
      trigger: input.trigger ?? 'operator',
      ...(input.delivery ? { delivery: input.delivery } : {}),
      ...(applied ? { previous: applied } : {}),
      ...(refused ? { forced: true } : {}),
    };
    if (await store.advanceApplied(applied, entry)) return { status: 'claimed', previous: applied };
  }
  throw ApplicationFailure.retryable('the applied commit kept moving under this apply', 'AppliedContention');
}

/**
 * Waits for the apply that claimed the pointer before this one to finish starting its rollouts, so
 * rollouts start in the order the pointer moved and this apply supersedes (and carries over) them.
 */
export async function closedApply(client: Client, commit: string): Promise<void> {
  const ctx = Context.current();
  const beat = setInterval(() => ctx.heartbeat(), 10_000);
  try {
    await client.workflow.getHandle(applyWorkflowId(commit)).result();
  } catch (err) {
    // Failed, gone, or never started here (an apply of an older release): nothing to wait for.
    log.info('previous apply did not complete', { commit, error: (err as Error).message });
  } finally {
    clearInterval(beat);
  }
}
