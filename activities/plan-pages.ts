import { ApplicationFailure, Context, log } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { Model } from '../schemas/model';
import { planKey, type PlannedHost, type SitePlan } from '../schemas/plan';
import {
  hostStateOf,
  type PlanPart,
  type PlanSummary,
  type SitePlanHead,
  type SiteRolloutResult,
} from '../schemas/rollout';
import { planChanges } from '../sot/plan';
import type { ModelStore } from './store/model-store';

/**
 * A part of a plan stays far below Temporal's 256 KB payload warning: it lands in the rollout's
 * history as an activity result, once per run.
 */
export const PART_BYTES = 128 * 1024;
export const PART_HOSTS = 2_000;

/** Plans read in parts: the last few stay parsed, as a rollout asks for each part of one in turn. */
const CACHED_PLANS = 4;

export class PlanPages {
  private readonly cache = new Map<string, SitePlan>();

  constructor(
    private readonly store: ModelStore,
    private readonly revision: (commit: string) => Promise<Model>,
    private readonly partHosts = PART_HOSTS,
  ) {}

  async plan(key: string): Promise<SitePlan> {
    const cached = this.cache.get(key);
    if (cached) return cached;
    const plan = await this.store.getPlan(key);
    if (!plan) throw ApplicationFailure.nonRetryable(`no stored plan ${key}`, 'UnknownPlan');
    this.cache.set(key, plan);
    if (this.cache.size > CACHED_PLANS) this.cache.delete(this.cache.keys().next().value!);
    return plan;
  }

  /** Plans every site of `commit`, stores each site's plan, and returns only their sizes and keys. */
  async planSites(commit: string, previous: string | undefined): Promise<PlanSummary> {
    const oldModel = previous && previous !== commit ? await this.revision(previous) : undefined;
    const from = oldModel ? previous! : '(nothing applied)';
    const plan = planChanges(oldModel, await this.revision(commit), from, commit);
    const sites: PlanSummary['sites'] = [];
    for (const site of plan.sites) {
      const key = planKey(commit, site.site);
      await this.store.putPlan(key, site);
      this.cache.delete(key);
      const hosts = site.waves.reduce((n, w) => n + w.hosts.length, 0);
      sites.push({ site: site.site, planKey: key, hosts, waves: site.waves.length });
    }
    return { from: plan.from, to: plan.to, sites };
  }

  /**
   * The hosts of the plan from position `offset` (plan order: wave by wave), as many as fit in one
   * part; the first part also carries everything else the rollout needs (groups, waves, policy).
   */
  async part(key: string, offset: number): Promise<PlanPart> {
    const plan = await this.plan(key);
    const all: { wave: number; host: PlannedHost }[] = [];
    for (const w of plan.waves) for (const host of w.hosts) all.push({ wave: w.index, host });
    const hosts: PlanPart['hosts'] = [];
    let bytes = 0;
    let i = offset;
    for (; i < all.length && hosts.length < this.partHosts && bytes < PART_BYTES; i++) {
      const { wave, host } = all[i]!;
      hosts.push({ wave, ...host });
      bytes += JSON.stringify(host).length + 12;
    }
    const part: PlanPart = { hosts, ...(i < all.length ? { next: i } : {}) };
    if (offset === 0) part.head = headOf(plan);
    return part;
  }

  /**
   * Waits for the rollout this one supersedes to close, then replans the site with the hosts it did
   * not reach carried over, and stores that plan. Undefined: nothing to take over.
   */
  async takeOver(
    client: Client,
    input: { commit: string; previous: string; site: string; workflowId: string },
  ): Promise<PlanSummary['sites'][number] | undefined> {
    const result = await closedRollout(client, input.workflowId);
    if (!result) return undefined;
    const remaining = await this.remainingOf(result);
    if (remaining.length === 0) return undefined;
    const carried = { hosts: remaining, reason: `carried over from ${input.workflowId}` };
    const plan = planChanges(
      await this.revision(input.previous),
      await this.revision(input.commit),
      input.previous,
      input.commit,
      { [input.site]: carried },
    );
    const site = plan.sites.find((s) => s.site === input.site);
    if (!site)
      throw ApplicationFailure.nonRetryable(`site ${input.site} is not in ${input.commit}`, 'UnknownSite');
    const key = planKey(input.commit, input.site, 'takeover');
    await this.store.putPlan(key, site);
    this.cache.delete(key);
    const hosts = site.waves.reduce((n, w) => n + w.hosts.length, 0);
    return { site: input.site, planKey: key, hosts, waves: site.waves.length };
  }

  /** The hosts a closed rollout never started: listed by older results, or read off its plan's order. */
  private async remainingOf(result: SiteRolloutResult): Promise<string[]> {
    if (result.remaining) return result.remaining;
    if (!result.planKey || result.states === undefined) return [];
    const plan = await this.plan(result.planKey);
    const names = plan.waves.flatMap((w) => w.hosts.map((h) => h.host));
    return names.filter((_, i) => {
      const state = hostStateOf(result.states![i]);
      return state === 'pending' || state === 'carried-over';
    });
  }
}

function headOf(plan: SitePlan): SitePlanHead {
  return {
    site: plan.site,
    name: plan.name,
    approval_required: plan.approval_required,
    canary_size: plan.canary_size,
    max_fail: plan.max_fail,
    groups: plan.groups,
    waves: plan.waves.map((w) => ({
      index: w.index,
      canary: w.canary,
      groups: w.groups,
      hosts: w.hosts.length,
      ...(w.soak ? { soak: w.soak } : {}),
      ...(w.gates ? { gates: w.gates } : {}),
    })),
  };
}

export async function closedRollout(
  client: Client,
  workflowId: string,
): Promise<SiteRolloutResult | undefined> {
  const ctx = Context.current();
  const beat = setInterval(() => ctx.heartbeat(), 10_000);
  try {
    return (await client.workflow.getHandle(workflowId).result()) as SiteRolloutResult;
  } catch (err) {
    // Gone, failed or terminated: nothing to take over, the plan against its commit stands.
    log.warn('superseded rollout did not close cleanly', { workflowId, error: (err as Error).message });
    return undefined;
  } finally {
    clearInterval(beat);
  }
}
