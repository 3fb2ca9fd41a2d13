import { condition } from '@temporalio/workflow';
import { START_BATCH } from './rollout-hosts';
import type { PlannedHost, Wave } from '../schemas/plan';
import type { RolloutPhase } from '../schemas/rollout';
import type { RolloutState } from './rollout-state';
import { gatesBefore, type Soakable } from './rollout-soak';

interface Queued {
  host: PlannedHost;
  wave: number;
}

/** Hosts not yet started, per group in plan order. */
export class HostQueue {
  private readonly byGroup = new Map<string, { list: Queued[]; next: number }>();
  size = 0;

  constructor(waves: Wave[]) {
    for (const wave of waves) {
      for (const host of wave.hosts) {
        const entry = this.byGroup.get(host.group) ?? { list: [], next: 0 };
        entry.list.push({ host, wave: wave.index });
        this.byGroup.set(host.group, entry);
        this.size += 1;
      }
    }
  }

  has(group: string): boolean {
    const entry = this.byGroup.get(group);
    return entry !== undefined && entry.next < entry.list.length;
  }

  /** The first host in plan order (by wave) of a group that `may` start one now. */
  peek(may: (group: string) => boolean): Queued | undefined {
    let best: Queued | undefined;
    for (const [group, { list, next }] of this.byGroup) {
      const head = list[next];
      if (head && (!best || head.wave < best.wave) && may(group)) best = head;
    }
    return best;
  }

  take(queued: Queued): void {
    const entry = this.byGroup.get(queued.host.group);
    if (entry?.list[entry.next] !== queued) throw new Error(`${queued.host.host} is not next in its group`);
    entry.next += 1;
    this.size -= 1;
  }
}

/** What the slot scheduler needs of a site rollout. */
export interface SlotRollout extends Soakable {
  readonly state: RolloutState;
  readonly paused: boolean;
  stopping(): boolean;
  mayStart(): Promise<boolean>;
  setPhase(phase: RolloutPhase): void;
  runHost(planned: PlannedHost): Promise<void>;
  /** Hosts asked to start and not started yet (hosts started by activity), or none. */
  readonly starter?: { backlog(): number };
}

/**
 * Starts the hosts of `waves` without a barrier between them: a host starts as soon as its group has
 * a free slot of its batch (max_concurrent within min_standing) and every group it depends on has
 * finished, in plan order, while the rollout is neither paused, halted nor stopping. The plan's
 * waves stay the expected batches; one slow host no longer holds back the rest of its wave.
 * Returns once every host has started (or the rollout stops); the caller waits for them to end.
 */
export async function startBySlots(rollout: SlotRollout, waves: Wave[]): Promise<void> {
  const { state } = rollout;
  const queue = new HostQueue(waves);
  const dependsOn = new Map(state.plan.groups.map((g) => [g.group, g.depends_on]));
  const may = (group: string) =>
    state.hasSlot(group) &&
    (dependsOn.get(group) ?? []).every((d) => !queue.has(d) && state.inFlight(d) === 0);
  while (queue.size > 0) {
    if (!(await rollout.mayStart())) return;
    if (state.phase !== 'running') rollout.setPhase('running');
    const next = queue.peek(may);
    if (!next) {
      // Wake on a freed slot, or on what mayStart must judge again: a signal or a host's failure.
      const failures = state.failures();
      await condition(
        () =>
          rollout.stopping() ||
          rollout.paused ||
          state.failures() !== failures ||
          queue.peek(may) !== undefined,
      );
      continue;
    }
    // Gates of an earlier wave are judged before a host of a later one starts (rollout-soak.ts).
    if (await gatesBefore(rollout, next.wave)) continue;
    const { starter } = rollout;
    if (starter && starter.backlog() >= START_BATCH) {
      // A batch's worth waits to be started: the next activation (its start's answer) goes on.
      await condition(() => rollout.stopping() || starter.backlog() < START_BATCH);
      continue;
    }
    queue.take(next);
    state.wave = Math.max(state.wave, next.wave);
    // A cancelled host (abort) is accounted for in runHost; the rollout waits for it by count.
    void rollout.runHost(next.host).catch(() => undefined);
  }
  // The last waves' gates, once their hosts have ended.
  await gatesBefore(rollout, Number.POSITIVE_INFINITY);
}
