import {
  CancelledFailure,
  condition,
  patched,
  proxyActivities,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { ServerActivities } from '../activities/server-activities';
import type { ClosedHost, HostProgress, HostStartRequest, SiteRolloutInput } from '../schemas/rollout';
import type { RunningHost } from './rollout-switch';
import { rolloutWorkflowId, SERVER_TASK_QUEUE } from '../schemas/runtime';

const { startHostWorkflows, cancelHostWorkflows } = proxyActivities<ServerActivities>({
  taskQueue: SERVER_TASK_QUEUE,
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '1 minute',
});
const { followHosts } = proxyActivities<ServerActivities>({
  taskQueue: SERVER_TASK_QUEUE,
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '1 minute',
});

/** Hosts per start activity at most: its input stays a few tens of KB. */
export const START_BATCH = 200;
/** A follow call with nothing closed returns after this long, so that hosts started since join. */
const FOLLOW_MAX_WAIT_MS = 30_000;
/** The pause after a follow call that found nothing closed. */
const FOLLOW_IDLE_MS = 5_000;
/**
 * This often (workflow time), a follow call's first poll describes each open host: visibility may
 * miss one. It was every 10th call: at 10,000 hosts with 1,000 in flight, 10 describes per host.
 */
const SWEEP_EVERY_MS = 5 * 60_000;

interface Queued {
  req: HostStartRequest;
  started: (workflowId: string) => void;
  failed: (err: Error) => void;
}

/** What the starter needs of a site rollout. */
export interface StarterRollout {
  readonly input: SiteRolloutInput;
  readonly running: Map<string, RunningHost>;
  stopping(): boolean;
}

/** A host's progress once its workflow closed, as the rollout reports it. */
export function recordOutcome(entry: HostProgress, closed: ClosedHost, why: string | undefined): void {
  if (closed.outcome === 'cancelled') {
    // Cancelled mid-reprovision (abort, or its rollout gone): not done, so a later rollout takes it over.
    entry.state = 'pending';
    entry.step = `cancelled: ${why ?? 'aborted'}`;
  } else if (closed.outcome === 'failed') {
    entry.state = 'failed';
    entry.error = closed.error;
    entry.failedAt = closed.failedAt;
  } else entry.state = closed.outcome;
}

/**
 * Starts a rollout's host workflows in batches by activity and follows them until they close by
 * polling visibility, instead of one child workflow each (issue 12): the rollout's history holds
 * a few events per batch, not six per host, and a continue-as-new has no children to wait for.
 * A host whose rollout is terminated is cancelled by the server's orphan sweep (server/rollouts).
 */
export class HostStarter {
  private readonly queue: Queued[] = [];
  /** Open host workflows: their host and the callback of the run waiting for each (none: carried over). */
  private readonly open = new Map<string, { host: string; waiter?: (closed: ClosedHost) => void }>();
  private since: string | undefined;
  private sweptAt = 0;
  /** A start activity is in flight: its hosts are about to be open. */
  private starting = 0;

  constructor(
    private readonly r: StarterRollout,
    /** A carried host (no caller waits for it) closed. */
    private readonly onCarriedClosed: (host: string, closed: ClosedHost) => void,
  ) {
    for (const [host, h] of r.running) if (h.adopted && h.workflowId) this.open.set(h.workflowId, { host });
  }

  /** Starts the host's workflow; resolves with how it ended. `started` runs once it is started. */
  run(req: HostStartRequest, started: () => void): Promise<ClosedHost> {
    return new Promise<ClosedHost>((resolve, reject) => {
      this.queue.push({
        req,
        failed: reject,
        started: (workflowId) => {
          this.open.set(workflowId, { host: req.host, waiter: resolve });
          started();
        },
      });
    });
  }

  /**
   * Hosts asked for and not started yet. The slot scheduler waits while a batch's worth is pending, so
   * that one activation never starts a thousand hosts: each host's promises cost a captured stack
   * trace, and an activation past the isolate's execution timeout crashes the worker thread.
   */
  backlog(): number {
    return this.queue.length + this.starting;
  }

  openIds(): string[] {
    return [...this.open.keys()];
  }

  /** Starts queued hosts, a batch at a time; a batch gathers the hosts queued in one activation. */
  async pump(): Promise<never> {
    const { site, commit, timeouts } = this.r.input;
    for (;;) {
      await condition(() => this.queue.length > 0);
      if (this.r.stopping()) {
        // Aborted or superseded before it started: the host is not reached; a later rollout takes it.
        for (const q of this.queue.splice(0)) q.failed(new CancelledFailure('the rollout is stopping'));
        continue;
      }
      const batch = this.queue.splice(0, START_BATCH);
      this.starting = batch.length;
      try {
        const started = await startHostWorkflows({
          site,
          commit,
          ...(timeouts ? { timeouts } : {}),
          hosts: batch.map((q) => q.req),
        });
        const byHost = new Map(started.map((s) => [s.host, s]));
        for (const q of batch) {
          const s = byHost.get(q.req.host);
          if (s && !s.error) q.started(s.workflowId);
          else q.failed(new Error(`could not start its workflow: ${s?.error ?? 'no answer'}`));
        }
      } catch (err) {
        for (const q of batch) q.failed(err instanceof Error ? err : new Error(String(err)));
      } finally {
        this.starting = 0;
      }
    }
  }

  /** Follows the open host workflows until each closed, telling whoever waits for it. */
  async follow(): Promise<never> {
    const { site, commit } = this.r.input;
    for (;;) {
      await condition(() => this.open.size > 0);
      const sweep = Date.now() - this.sweptAt >= SWEEP_EVERY_MS;
      if (sweep) this.sweptAt = Date.now();
      const { closed, asOf } = await followHosts({
        site,
        commit,
        rollout: rolloutWorkflowId(site, commit),
        workflowIds: this.openIds(),
        since: this.since ?? workflowInfo().runStartTime.toISOString(),
        maxWaitMs: FOLLOW_MAX_WAIT_MS,
        sweep,
      });
      this.since = asOf;
      // Nothing closed in a whole call: a timer before the next, so that a test server's clock can
      // skip ahead (an activity in flight holds it). Older runs went straight on (patched).
      if (closed.length === 0 && patched('follow-idle-timer')) await sleep(FOLLOW_IDLE_MS);
      for (const c of closed) {
        const open = this.open.get(c.workflowId);
        if (!open) continue;
        this.open.delete(c.workflowId);
        if (open.waiter) open.waiter(c);
        else this.onCarriedClosed(open.host, c);
      }
    }
  }

  /** Aborted: every open host workflow is cancelled (each disarms); the follower sees them close. */
  async cancelAll(): Promise<void> {
    // A batch being started now would be open after the cancel: it lands first.
    await condition(() => this.starting === 0);
    const ids = this.openIds();
    if (ids.length > 0) await cancelHostWorkflows({ workflowIds: ids });
  }
}
