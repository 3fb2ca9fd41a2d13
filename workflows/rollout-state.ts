import type { SitePlan } from '../schemas/plan';
import type { HostProgress, RolloutPhase, RolloutStatus, StatusPage } from '../schemas/rollout';
import { DEFAULT_STATUS_HOSTS, MAX_CONCURRENT, own } from '../schemas/runtime';

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
  /**
   * Failures per group ('' for the site), counted once per change: conditions ask on every
   * activation, and a count over 10,000 hosts each time costs more than the rollout itself.
   */
  private failCounts: Map<string, number> | undefined;

  constructor(
    readonly site: string,
    readonly commit: string,
    public plan: SitePlan,
  ) {
    this.reset(plan);
  }

  reset(plan: SitePlan): void {
    this.plan = plan;
    this.touch();
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

  /** A host's state or attempt changed outside begin/end: failures are counted again. */
  touch(): void {
    this.failCounts = undefined;
  }

  failures(group?: string): number {
    if (!this.failCounts) {
      const counts = new Map<string, number>([['', 0]]);
      for (const h of Object.values(this.hosts)) {
        if (!(h.state === 'failed' || (this.retriesCount && h.state === 'running' && h.attempt > 1)))
          continue;
        counts.set('', counts.get('')! + 1);
        counts.set(h.group, (counts.get(h.group) ?? 0) + 1);
      }
      this.failCounts = counts;
    }
    return this.failCounts.get(group ?? '') ?? 0;
  }

  begin(group: string): void {
    this.active.set(group, this.inFlight(group) + 1);
    this.touch();
  }

  end(group: string): void {
    this.active.set(group, this.inFlight(group) - 1);
    this.touch();
  }

  /** Hosts in flight, of one group or of all. */
  inFlight(group?: string): number {
    if (group) return this.active.get(group) ?? 0;
    let n = 0;
    for (const count of this.active.values()) n += count;
    return n;
  }

  /**
   * Whether one more host of the group may start now without exceeding its batch, nor the site's
   * MAX_CONCURRENT: groups that do not depend on each other run side by side, and their batches
   * together may be more children than Temporal lets one workflow have pending.
   */
  hasSlot(group: string): boolean {
    const batch = this.plan.groups.find((g) => g.group === group)?.batch ?? 1;
    return this.inFlight(group) < batch && this.inFlight() < MAX_CONCURRENT;
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

  /** Counts of every host, and the hosts of one page (default: the first DEFAULT_STATUS_HOSTS). */
  status(page: StatusPage = {}): RolloutStatus {
    const all = Object.values(this.hosts);
    const count = (...states: HostProgress['state'][]) => all.filter((h) => states.includes(h.state)).length;
    const offset = page.offset ?? 0;
    const limit = page.limit ?? DEFAULT_STATUS_HOSTS;
    let matching = Object.entries(this.hosts);
    if (page.host !== undefined) matching = matching.filter(([name]) => name === page.host);
    if (page.state) matching = matching.filter(([, h]) => h.state === page.state);
    const hosts: Record<string, HostProgress> = {};
    for (const [name, h] of matching.slice(offset, offset + limit))
      Object.defineProperty(hosts, name, { value: h, enumerable: true, writable: true, configurable: true });
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
      hosts,
      page: { offset, limit, total: matching.length },
    };
  }
}
