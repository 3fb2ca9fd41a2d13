import { bootInterface, type Host } from '../schemas/host';
import type { Model } from '../schemas/model';
import type { GroupRules, Plan, PlannedHost, SitePlan, Wave } from '../schemas/plan';
import type { Site } from '../schemas/site';
import { bootStates, type StageState } from './boot-state';
import { own } from '../schemas/common';
import { canaryRules, waveExtras } from './plan-gates';

interface HostState {
  group: string;
  firmware: string;
  mac: string;
  ipv4: string;
  subnet: string;
  stages: StageState[];
}

function hostState(model: Model, siteId: string, host: Host): HostState {
  const iface = bootInterface(host);
  return {
    group: host.group,
    firmware: host.firmware,
    mac: iface.mac,
    ipv4: iface.ipv4,
    subnet: iface.subnet,
    stages: bootStates(model, siteId, host),
  };
}

/** Why a host must be reprovisioned, in words an operator reads in a plan; empty when nothing changed. */
export function changeReasons(before: HostState | undefined, after: HostState): string[] {
  if (!before) return ['new host'];
  const reasons: string[] = [];
  for (const key of ['group', 'firmware', 'mac', 'ipv4', 'subnet'] as const) {
    if (before[key] !== after[key]) reasons.push(`${key} ${before[key]} -> ${after[key]}`);
  }
  if (before.stages.length !== after.stages.length) {
    reasons.push(`boot stages ${before.stages.length} -> ${after.stages.length}`);
  }
  const prefix = (i: number) => (after.stages.length > 1 ? `stage ${i + 1} ` : '');
  after.stages.forEach((stage, i) => {
    const old = before.stages[i];
    if (!old) return;
    if (old.profile !== stage.profile)
      reasons.push(`${prefix(i)}boot profile ${old.profile} -> ${stage.profile}`);
    if (old.os !== stage.os) reasons.push(`${prefix(i)}os ${old.os} -> ${stage.os}`);
    if (old.kernel !== stage.kernel) reasons.push(`${prefix(i)}kernel changed`);
    if (old.initrds !== stage.initrds) reasons.push(`${prefix(i)}initrd changed`);
    if (old.cmdline !== stage.cmdline) reasons.push(`${prefix(i)}cmdline changed`);
    if (old.unattended !== stage.unattended) reasons.push(`${prefix(i)}unattended config changed`);
  });
  return reasons;
}

/** Groups in dependency layers: a group's layer is one more than the deepest group it depends on. */
export function dependencyLayers(model: Model): string[][] {
  const layer = new Map<string, number>();
  const depth = (id: string, seen: Set<string>): number => {
    const known = layer.get(id);
    if (known !== undefined) return known;
    if (seen.has(id)) throw new Error(`dependency cycle through ${id}`);
    seen.add(id);
    const deps = own(model.groups, id)?.rollout.depends_on ?? [];
    const d = deps.length === 0 ? 0 : 1 + Math.max(...deps.map((dep) => depth(dep, seen)));
    layer.set(id, d);
    return d;
  };
  const ids = Object.keys(model.groups).sort();
  const layers: string[][] = [];
  for (const id of ids) (layers[depth(id, new Set())] ??= []).push(id);
  return layers.filter((l) => l.length > 0);
}

function chunk<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Hosts to include whatever changed, with the reason: those a superseded rollout did not reach. */
export interface CarriedHosts {
  hosts: string[];
  reason: string;
}

/** The site's hosts sorted into those to provision, those never provisioned, the unchanged and the removed. */
function classifyHosts(
  oldModel: Model | undefined,
  model: Model,
  siteId: string,
  hosts: Host[],
  carried?: CarriedHosts,
) {
  const oldSite = oldModel ? own(oldModel.sites, siteId) : undefined;
  const changed: PlannedHost[] = [];
  const skipped: PlannedHost[] = [];
  const unchanged: string[] = [];
  // The first host of a name, as find() gave it; a duplicate name is refused by validation anyway.
  const oldHosts = new Map<string, Host>();
  for (const h of oldSite?.hosts ?? []) if (!oldHosts.has(h.name)) oldHosts.set(h.name, h);
  const names = new Set(hosts.map((h) => h.name));
  const carriedNames = new Set(carried?.hosts);
  for (const host of [...hosts].sort((a, b) => a.name.localeCompare(b.name))) {
    const oldHost = oldHosts.get(host.name);
    const before = oldHost && oldModel ? hostState(oldModel, siteId, oldHost) : undefined;
    const reasons = changeReasons(before, hostState(model, siteId, host));
    if (carried && carriedNames.has(host.name)) reasons.unshift(carried.reason);
    if (reasons.length === 0) unchanged.push(host.name);
    else if (host.never_provision) skipped.push({ host: host.name, group: host.group, reasons });
    else changed.push({ host: host.name, group: host.group, reasons });
  }
  const removed = (oldSite?.hosts ?? []).filter((h) => !names.has(h.name)).map((h) => h.name);
  return { changed, skipped, unchanged, removed };
}

/** Each group with hosts at the site, in dependency order, with its rules and its changed hosts. */
function groupRules(model: Model, site: Site, hosts: Host[], changed: PlannedHost[]) {
  const groups: GroupRules[] = [];
  const pending = new Map<string, PlannedHost[]>();
  const sizes = new Map<string, number>();
  for (const h of hosts) sizes.set(h.group, (sizes.get(h.group) ?? 0) + 1);
  const changedByGroup = new Map<string, PlannedHost[]>();
  for (const h of changed) {
    const list = changedByGroup.get(h.group);
    if (list) list.push(h);
    else changedByGroup.set(h.group, [h]);
  }
  for (const layer of dependencyLayers(model)) {
    for (const id of layer) {
      const group = own(model.groups, id);
      const size = sizes.get(id) ?? 0;
      if (!group || size === 0) continue;
      const mine = changedByGroup.get(id) ?? [];
      const batch = Math.max(1, Math.min(group.rollout.max_concurrent, size - group.rollout.min_standing));
      groups.push({
        group: id,
        hosts: size,
        changed: mine.length,
        batch,
        max_fail: group.rollout.max_fail,
        depends_on: group.rollout.depends_on,
        reboot_windows: group.rollout.reboot_windows ?? site.policy.reboot_windows,
      });
      pending.set(id, mine);
    }
  }
  return { groups, pending };
}

/**
 * The canary wave (from the first group with changes), then per dependency layer rounds of one batch
 * of each of its groups. Takes the hosts out of `pending`.
 */
function planWaves(
  model: Model,
  site: Site,
  groups: GroupRules[],
  pending: Map<string, PlannedHost[]>,
): Wave[] {
  const waves: Wave[] = [];
  const firstGroup = groups.find((g) => g.changed > 0);
  if (firstGroup) {
    const rules = canaryRules(model, site, firstGroup.group);
    const canary = (pending.get(firstGroup.group) ?? []).splice(0, Math.min(rules.size, firstGroup.batch));
    const groups = [firstGroup.group];
    if (canary.length > 0)
      waves.push({
        index: 1,
        canary: true,
        groups,
        hosts: canary,
        ...waveExtras(model, site, groups, rules.soak),
      });
  }
  for (const layer of dependencyLayers(model)) {
    const batches = groups
      .filter((g) => layer.includes(g.group))
      .map((g) => ({ group: g.group, batches: chunk(pending.get(g.group) ?? [], g.batch) }));
    const rounds = Math.max(0, ...batches.map((b) => b.batches.length));
    for (let r = 0; r < rounds; r++) {
      const inWave = batches.filter((b) => b.batches[r]);
      const groups = inWave.map((b) => b.group);
      waves.push({
        index: waves.length + 1,
        canary: false,
        groups,
        hosts: inWave.flatMap((b) => b.batches[r] ?? []),
        ...waveExtras(model, site, groups),
      });
    }
  }
  return waves;
}

function planSite(
  oldModel: Model | undefined,
  model: Model,
  siteId: string,
  carried?: CarriedHosts,
): SitePlan {
  const { site, hosts } = own(model.sites, siteId) ?? { site: undefined, hosts: [] };
  if (!site) throw new Error(`unknown site ${siteId}`);
  const { changed, skipped, unchanged, removed } = classifyHosts(oldModel, model, siteId, hosts, carried);
  const { groups, pending } = groupRules(model, site, hosts, changed);
  return {
    site: site.id,
    name: site.name,
    approval_required: site.policy.approval_required,
    canary_size: site.policy.canary_size,
    max_fail: site.policy.max_fail,
    groups,
    waves: planWaves(model, site, groups, pending),
    unchanged,
    removed,
    skipped,
  };
}

/**
 * What must change to go from `oldModel` (none: a first deployment) to `model`: per site, the hosts whose
 * boot chain or placement changed, in canary-first waves bounded by the rollout rules, in dependency order.
 */
export function planChanges(
  oldModel: Model | undefined,
  model: Model,
  from: string,
  to: string,
  carried: Record<string, CarriedHosts> = {},
): Plan {
  const siteIds = Object.keys(model.sites).sort();
  return { from, to, sites: siteIds.map((id) => planSite(oldModel, model, id, carried[id])) };
}
