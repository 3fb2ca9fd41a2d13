import { ApplicationFailure } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { Plan, SitePlan } from '../schemas/plan';
import { renderStage } from '../sot/boot-chain';
import { formatDiagnostic } from '../sot/diagnostics';
import { checkoutRevision, ensureCommit, RevisionError } from '../sot/git-checkout';
import { planChanges, type CarriedHosts } from '../sot/plan';
import { validateSot } from '../sot/validate';
import type { Model } from '../schemas/model';
import type { HostSpec, PlanSummary, StartHostsInput } from '../schemas/rollout';
import { bootInterface, type Host } from '../schemas/host';
import { DEFAULT_BOOT_RETRIES } from '../schemas/host-group';
import { claimApplied, closedApply, type ClaimInput } from './apply-order';
import { awaitHostsClosed, type AwaitHostsInput } from './host-results';
import { cancelHostWorkflows, followHosts, startHostWorkflows, type FollowHostsInput } from './host-starts';
import { closedRollout, PlanPages } from './plan-pages';
import type { ActiveRollout, ModelStore } from './store/model-store';
import { own } from '../schemas/common';
import { checkGate, type CheckGateInput } from './gates/check-gate';
import { createSecretResolver, type SecretResolver } from './jobs/secrets';

export interface ServerActivityDeps {
  store: ModelStore;
  client: Client;
  /** What the server knows of each site's agents (their heartbeats); none: every site is `unknown`. */
  siteReachability?: (site: string) => 'reachable' | 'unreachable' | 'unknown';
  /** Hosts per part of a stored plan at most (default PART_HOSTS). */
  planPartHosts?: number;
  /** Resolves gates' `token` references: the server's own environment and files by default. */
  resolveSecret?: SecretResolver;
}

async function revision(store: ModelStore, commit: string): Promise<Model> {
  const model = await store.getRevision(commit);
  if (!model)
    throw ApplicationFailure.nonRetryable(`no model revision for commit ${commit}`, 'UnknownRevision');
  return model;
}

/** What a host's reprovision needs, from the model revision of its commit, jobs rendered for it. */
function specOf(model: Model, site: string, host: Host): HostSpec {
  const iface = bootInterface(host);
  const group = own(model.groups, host.group);
  const stages = (group?.boots ?? []).map((_, i) => {
    const rendered = renderStage(model, site, host, i);
    return {
      stage: rendered.stage,
      profile: rendered.profile,
      preShutdown: rendered.preShutdown,
      validation: rendered.validation,
      kernelFromAgent: rendered.kernel.startsWith(rendered.context.urls.assets),
      ...(rendered.image ? { image: { checksum: rendered.image.checksum, disk: rendered.image.disk } } : {}),
    };
  });
  return {
    site,
    host: host.name,
    group: host.group,
    mac: iface.mac,
    ipv4: iface.ipv4,
    bmc: host.bmc,
    never_provision: host.never_provision,
    // A revision stored before boot_retries existed has groups without it: the default applies.
    bootRetries: group?.boot_retries ?? DEFAULT_BOOT_RETRIES,
    stages,
  };
}

/** Reads what a host's reprovision needs from the model revision of its commit, jobs rendered for it. */
export async function hostSpec(
  store: ModelStore,
  input: { commit: string; site: string; host: string },
): Promise<HostSpec> {
  const model = await revision(store, input.commit);
  const host = own(model.sites, input.site)?.hosts.find((h) => h.name === input.host);
  if (!host) {
    throw ApplicationFailure.nonRetryable(
      `host ${input.site}/${input.host} is not in commit ${input.commit}`,
      'UnknownHost',
    );
  }
  return specOf(model, input.site, host);
}

/**
 * The specs of a batch of hosts, the revision read once: a host left out (not in the commit, or its
 * stage does not render) is started without one and fails in its workflow as it did before.
 */
export async function hostSpecs(
  store: ModelStore,
  input: { commit: string; site: string; hosts: readonly string[] },
): Promise<Map<string, HostSpec>> {
  const model = await revision(store, input.commit);
  const wanted = new Set(input.hosts);
  const specs = new Map<string, HostSpec>();
  for (const host of own(model.sites, input.site)?.hosts ?? []) {
    if (!wanted.has(host.name)) continue;
    try {
      specs.set(host.name, specOf(model, input.site, host));
    } catch {
      // Its workflow loads it and fails with the reason.
    }
  }
  return specs;
}

/** Orchestration work, run by the server on `vaquero-server`. */
export function createServerActivities(deps: ServerActivityDeps) {
  const { store } = deps;
  const pages = new PlanPages(store, (commit) => revision(store, commit), deps.planPartHosts);
  const gateDeps = {
    model: (commit: string) => revision(store, commit),
    resolveSecret: deps.resolveSecret ?? createSecretResolver(process.env),
  };
  return {
    /** One evaluation of a metric gate for the hosts of a wave: a failure names query, value and time. */
    checkGate: (input: CheckGateInput) => checkGate(gateDeps, input),

    loadHostSpec: (input: { commit: string; site: string; host: string }) => hostSpec(store, input),

    /**
     * Whether the site's agents are heard from: a host whose boot events are late at an unreachable
     * site waits for the agent (which journals its events on disk) instead of failing.
     */
    siteReachability: (input: { site: string }): Promise<'reachable' | 'unreachable' | 'unknown'> =>
      Promise.resolve(deps.siteReachability?.(input.site) ?? 'unknown'),

    /** Fetches the SoT at a commit, validates it and stores it as a model revision. */
    async prepareCommit(input: { source: string; commit: string }): Promise<PreparedCommit> {
      // Retryable: the push may have come before the clone has the commit; the next attempt fetches again.
      const present = await ensureCommit(input.source, input.commit).catch((err: unknown) => {
        throw err instanceof RevisionError
          ? ApplicationFailure.nonRetryable(err.message, 'UnknownRevision')
          : err;
      });
      if (!present)
        throw ApplicationFailure.retryable(
          `${input.commit}: not (yet) in the repository holding ${input.source}, nor on its remotes`,
          'MissingRevision',
        );
      const { root, cleanup } = await checkoutRevision(input.source, input.commit).catch((err: unknown) => {
        throw err instanceof RevisionError
          ? ApplicationFailure.nonRetryable(err.message, 'UnknownRevision')
          : err;
      });
      try {
        const result = await validateSot(root);
        if (!result.model) {
          const problems = result.diagnostics.map(formatDiagnostic);
          return { valid: false, problems: problems.slice(0, 100), problemCount: problems.length, sites: [] };
        }
        await store.putRevision(input.commit, result.model);
        return { valid: true, problems: [], problemCount: 0, sites: Object.keys(result.model.sites).sort() };
      } finally {
        await cleanup();
      }
    },

    /**
     * The plan from `previous` (default: the last applied commit; null: a first deployment) to
     * `commit`.
     */
    async planCommit(input: { commit: string; previous?: string | null }): Promise<Plan> {
      const previous = input.previous === null ? undefined : (input.previous ?? (await store.getApplied()));
      const oldModel = previous && previous !== input.commit ? await revision(store, previous) : undefined;
      return planChanges(
        oldModel,
        await revision(store, input.commit),
        oldModel ? previous! : '(nothing applied)',
        input.commit,
      );
    },

    /** The plan of every site, each stored under its key: the apply passes keys, not plans. */
    async planSites(input: { commit: string; previous?: string | null }): Promise<PlanSummary> {
      const previous = input.previous === null ? undefined : (input.previous ?? (await store.getApplied()));
      return pages.planSites(input.commit, previous);
    },

    /** Hosts of a stored plan from `offset`, at most one payload's worth (the rollout asks part by part). */
    loadPlanPart: (input: { key: string; offset: number }) => pages.part(input.key, input.offset),

    /** Waits for a superseded rollout and stores the replan with its unreached hosts carried over. */
    takeOverPlan: (input: { commit: string; previous: string; site: string; workflowId: string }) =>
      pages.takeOver(deps.client, input),

    async replanSite(input: {
      commit: string;
      previous: string;
      site: string;
      carried: CarriedHosts;
    }): Promise<SitePlan> {
      const oldModel = await revision(store, input.previous);
      const plan = planChanges(oldModel, await revision(store, input.commit), input.previous, input.commit, {
        [input.site]: input.carried,
      });
      const site = plan.sites.find((s) => s.site === input.site);
      if (!site)
        throw ApplicationFailure.nonRetryable(`site ${input.site} is not in ${input.commit}`, 'UnknownSite');
      return site;
    },

    claimApplied: (input: ClaimInput) => claimApplied(store, input),
    awaitApplyClosed: (input: { commit: string }) => closedApply(deps.client, input.commit),
    markApplied: (input: { commit: string }) => store.setApplied(input.commit),
    getActiveRollout: (input: { site: string }) => store.getActiveRollout(input.site),
    setActiveRollout: ({ site, ...rollout }: { site: string } & ActiveRollout) =>
      store.setActiveRollout(site, rollout),
    awaitRolloutClosed: (input: { workflowId: string }) => closedRollout(deps.client, input.workflowId),
    awaitHostsClosed: (input: AwaitHostsInput) => awaitHostsClosed(deps.client, input),
    startHostWorkflows: (input: StartHostsInput) =>
      startHostWorkflows(deps.client, input, (hosts) =>
        hostSpecs(store, { commit: input.commit, site: input.site, hosts }),
      ),
    followHosts: (input: FollowHostsInput) => followHosts(deps.client, input),
    cancelHostWorkflows: (input: { workflowIds: string[] }) => cancelHostWorkflows(deps.client, input),
  };
}

export interface PreparedCommit {
  valid: boolean;
  problems: string[];
  problemCount: number;
  sites: string[];
}

export type ServerActivities = ReturnType<typeof createServerActivities>;
