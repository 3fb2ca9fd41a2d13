import { CancellationScope, condition, sleep } from '@temporalio/workflow';

/**
 * One timer for a host's boot steps where each step had its own: a step whose event came in the
 * same batch as the previous one needs none, and a timer left running when the workflow ends costs
 * no event (a cancelled one costs one, a fired one four). A step whose deadline is later than the
 * running timer's keeps that timer: a boot that ends before it fires (a sim, a quick install) pays
 * nothing for the move, a longer one pays a fired timer and a new one. Each step still fails at its
 * own deadline: its timeout after the previous step.
 */
export class BootWatchdog {
  private scope: CancellationScope | undefined;
  private deadline: number | undefined;
  private fired = false;

  /** Waits until `seen()` holds or workflow time reaches `deadline` (ms); true when seen. */
  async until(seen: () => boolean, deadline: number): Promise<boolean> {
    while (!seen()) {
      if (this.fired && this.deadline !== undefined && this.deadline >= deadline) return false;
      if (this.deadline === undefined || this.fired || deadline < this.deadline) this.start(deadline);
      await condition(() => seen() || this.fired);
    }
    return true;
  }

  private start(deadline: number): void {
    this.stop();
    const scope = new CancellationScope();
    this.scope = scope;
    this.deadline = deadline;
    this.fired = false;
    scope
      .run(() => sleep(Math.max(1, deadline - Date.now())))
      .then(
        () => {
          if (this.scope === scope) this.fired = true;
        },
        // Cancelled by stop() or with the workflow: nothing waits on it any more.
        () => undefined,
      );
  }

  /** Cancels a pending timer: worth its one event only when the workflow goes on waiting for more. */
  stop(): void {
    if (this.scope && !this.fired) this.scope.cancel();
    this.scope = undefined;
    this.deadline = undefined;
    this.fired = false;
  }
}
