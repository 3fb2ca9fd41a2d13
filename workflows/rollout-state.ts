import type { SitePlan } from '../schemas/plan';
import type { HostProgress, RolloutPhase, RolloutStatus } from '../schemas/rollout';
import { own } from '../schemas/common';

/** The rollout's bookkeeping: per-host progress and the counts the `status` query reports. */
export class RolloutState {
  phase: RolloutPhase = 'running';
  wave = 0;
  waitingFor: string | undefined;
  readonly hosts: Record<string, HostProgress> = {};
  /**
   * A retried host in flight counts against the failure budget until it succeeds, so that retrying
   * does not lift a halt before the fix is shown to work. Off for histories from before (patched).
   */
  retriesCount = false;
  /** Reprovisions started and not ended, per group: what the group's batch (max_concurrent) bounds. */
  private readonly active = new Map<string, number>();

  constructor(
    readonly site: string,
    readonly commit: string,
    public plan: SitePlan,
  ) {
    this.reset(plan);
  }

  reset(plan: SitePlan): void {
    this.plan = plan;
    for (const wave of plan.waves) {
      for (const h of wave.hosts) {
        const carried = h.reasons.some((r) => r.startsWith('carried over'));
        this.hosts[h.host] ??= {
          group: h.group,
          wave: wave.index,
          state: carried ? 'carried-over' : 'pending',
          attempt: 0,
        };
        const entry = own(this.hosts, h.host);
        if (entry) entry.wave = wave.index;
      }
    }
  }

  host(name: string): HostProgress {
    const entry = own(this.hosts, name);
    if (!entry) throw new Error(`host ${name} is not in this rollout`);
    return entry;
  }

  names(state: HostProgress['state']): string[] {
    return Object.entries(this.hosts)
      .filter(([, h]) => h.state === state)
      .map(([name]) => name)
      .sort();
  }

  failures(group?: string): number {
    const counts = (h: HostProgress) =>
      h.state === 'failed' || (this.retriesCount && h.state === 'running' && h.attempt > 1);
    return Object.values(this.hosts).filter((h) => counts(h) && (!group || h.group === group)).length;
  }

  begin(group: string): void {
    this.active.set(group, this.inFlight(group) + 1);
  }

  end(group: string): void {
    this.active.set(group, this.inFlight(group) - 1);
  }

  /** Hosts in flight, of one group or of all. */
  inFlight(group?: string): number {
    if (group) return this.active.get(group) ?? 0;
    let n = 0;
    for (const count of this.active.values()) n += count;
    return n;
  }

  /** Whether one more host of the group may start now without exceeding its batch. */
  hasSlot(group: string): boolean {
    const batch = this.plan.groups.find((g) => g.group === group)?.batch ?? 1;
    return this.inFlight(group) < batch;
  }

  /** The failure budget is spent when the site's or a group's failures exceed what it tolerates. */
  budgetSpent(): string | undefined {
    const site = this.failures();
    if (site > this.plan.max_fail)
      return `${site} ${this.failedWord()} exceed the site's max_fail ${this.plan.max_fail}`;
    for (const g of this.plan.groups) {
      const n = this.failures(g.group);
      if (n > g.max_fail) return `${n} ${this.failedWord()} of ${g.group} exceed its max_fail ${g.max_fail}`;
    }
    return undefined;
  }

  private failedWord(): string {
    return this.retriesCount ? 'failed (or retrying) hosts' : 'failed hosts';
  }

  status(): RolloutStatus {
    const all = Object.values(this.hosts);
    const count = (...states: HostProgress['state'][]) => all.filter((h) => states.includes(h.state)).length;
    return {
      site: this.site,
      commit: this.commit,
      phase: this.phase,
      wave: this.wave,
      waves: this.plan.waves.length,
      waitingFor: this.waitingFor,
      counts: {
        total: all.length,
        pending: count('pending', 'carried-over'),
        running: count('running'),
        succeeded: count('succeeded', 'skipped'),
        failed: count('failed'),
      },
      hosts: this.hosts,
    };
  }
}
