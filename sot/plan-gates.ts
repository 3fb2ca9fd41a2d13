// Soak and metric gates as a plan carries them: per wave, from the site's policy and the wave's groups.
import type { Gate, PlannedGate } from '../schemas/gates';
import type { Model } from '../schemas/model';
import type { Site } from '../schemas/site';
import { own } from '../schemas/common';

/** The canary's size and soak for a rollout that starts with `group`: the group's rules, else the site's. */
export function canaryRules(model: Model, site: Site, group: string): { size: number; soak?: string } {
  const canary = own(model.groups, group)?.rollout.canary;
  if (typeof canary === 'number') return { size: canary, soak: site.policy.soak };
  return { size: canary?.size ?? site.policy.canary_size, soak: canary?.soak ?? site.policy.soak };
}

function planned(gate: Gate, from: string): PlannedGate {
  return { from, ...gate };
}

/** The gates judged after a wave of these groups: the site's, then each group's. */
export function waveGates(model: Model, site: Site, groups: string[]): PlannedGate[] {
  const gates = (site.policy.gates ?? []).map((g) => planned(g, 'site'));
  for (const id of groups)
    for (const g of own(model.groups, id)?.rollout.gates ?? []) gates.push(planned(g, id));
  return gates;
}

/** The wave's soak and gates, only when it has any: plans without them keep their former shape. */
export function waveExtras(
  model: Model,
  site: Site,
  groups: string[],
  soak?: string,
): { soak?: string; gates?: PlannedGate[] } {
  const gates = waveGates(model, site, groups);
  return { ...(soak ? { soak } : {}), ...(gates.length > 0 ? { gates } : {}) };
}

/** A gate in one line, as plans and halts name it. */
export function gateLine(g: Pick<PlannedGate, 'name' | 'query' | 'must' | 'for' | 'every'>): string {
  const watch = g.for ? ` for ${g.for} every ${g.every}` : '';
  return `${g.name ? `${g.name}: ` : ''}${g.query} ${g.must}${watch}`;
}
