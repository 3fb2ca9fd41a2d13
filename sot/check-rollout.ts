import type { RebootWindow } from '../schemas/common';
import type { HostGroup } from '../schemas/host-group';
import { at, type Diagnostic, type DocRef, type PathSegment } from './diagnostics';
import { firstByKey, type Located, type LoadedSot } from './load';

function checkWindows(
  ref: DocRef,
  windows: readonly RebootWindow[],
  path: PathSegment[],
  out: Diagnostic[],
): void {
  windows.forEach((w, i) => {
    if (w.start === w.end)
      out.push(
        at(
          ref,
          [...path, i, 'end'],
          'reboot-window',
          `reboot window is empty (start and end are both ${w.start})`,
        ),
      );
  });
}

/** Finds one cycle in the depends_on graph, as the list of group ids around it. */
function findCycle(edges: Map<string, string[]>): string[] | undefined {
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (id: string): string[] | undefined => {
    if (state.get(id) === 'done') return undefined;
    if (state.get(id) === 'visiting') return [...stack.slice(stack.indexOf(id)), id];
    state.set(id, 'visiting');
    stack.push(id);
    // A self-dependency is reported on its own, at the list item.
    for (const dep of (edges.get(id) ?? []).filter((d) => d !== id)) {
      const cycle = visit(dep);
      if (cycle) return cycle;
    }
    stack.pop();
    state.set(id, 'done');
    return undefined;
  };
  for (const id of [...edges.keys()].sort()) {
    const cycle = visit(id);
    if (cycle) return cycle;
  }
  return undefined;
}

/** Hosts per group per site directory; a directory without a valid site holds none (checkReferences says so). */
function hostCounts(sot: LoadedSot): [string, Map<string, number>][] {
  const siteDirs = new Set(sot.sites.map((s) => s.siteDir));
  const counts = new Map<string, Map<string, number>>();
  for (const { value: host, siteDir } of sot.hosts) {
    if (!siteDirs.has(siteDir) || sot.incompleteSites.has(siteDir)) continue;
    const perGroup = counts.get(siteDir) ?? new Map<string, number>();
    perGroup.set(host.group, (perGroup.get(host.group) ?? 0) + 1);
    counts.set(siteDir, perGroup);
  }
  return [...counts].sort(([a], [b]) => a.localeCompare(b));
}

/** min_standing and depends_on of one group against the hosts of each site it has hosts in. */
function checkGroupSizes(
  { value: group, ref }: Located<HostGroup>,
  counts: [string, Map<string, number>][],
  groupIds: ReadonlySet<string>,
  out: Diagnostic[],
): void {
  const rules = group.rollout;
  for (const [siteId, perGroup] of counts) {
    const size = perGroup.get(group.id) ?? 0;
    if (size === 0) continue;
    if (rules.min_standing >= size) {
      out.push(
        at(
          ref,
          ['rollout', 'min_standing'],
          'dependency',
          `min_standing ${rules.min_standing} leaves none of the ${size} hosts of ${group.id} in site ${siteId} free to reprovision`,
        ),
      );
    }
    rules.depends_on.forEach((dep, i) => {
      if (dep !== group.id && groupIds.has(dep) && !perGroup.get(dep)) {
        out.push(
          at(
            ref,
            ['rollout', 'depends_on', i],
            'dependency',
            `${group.id} depends on ${dep}, which has no hosts in site ${siteId}: the dependency cannot be satisfied there`,
          ),
        );
      }
    });
  }
}

/** Dependencies acyclic and satisfiable per site; min_standing leaves room to reprovision; windows not empty. */
export function checkRollout(sot: LoadedSot): Diagnostic[] {
  const out: Diagnostic[] = [];
  const groups = firstByKey(sot.groups, (g) => g.value.id);
  const cycle = findCycle(new Map([...groups].map(([id, g]) => [id, g.value.rollout.depends_on])));
  const start = cycle && groups.get(cycle[0] ?? '');
  if (cycle && start) {
    const message = `dependency cycle: ${cycle.join(' -> ')}`;
    out.push(at(start.ref, ['rollout', 'depends_on'], 'dependency', message));
  }
  for (const { value: site, ref } of sot.sites)
    checkWindows(ref, site.policy.reboot_windows, ['policy', 'reboot_windows'], out);
  const counts = hostCounts(sot);
  for (const located of sot.groups) {
    const { value: group, ref } = located;
    group.rollout.depends_on.forEach((dep, i) => {
      if (dep === group.id)
        out.push(
          at(ref, ['rollout', 'depends_on', i], 'dependency', `host group ${group.id} depends on itself`),
        );
    });
    const windows = group.rollout.reboot_windows;
    if (windows) checkWindows(ref, windows, ['rollout', 'reboot_windows'], out);
    checkGroupSizes(located, counts, new Set(groups.keys()), out);
  }
  return out;
}
