import type { RebootWindow } from '../../schemas/common';
import { at, type Diagnostic, type DocRef, type PathSegment } from './diagnostics';
import type { LoadedSot } from './load';

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
    for (const dep of edges.get(id) ?? []) {
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

/** Dependencies acyclic and satisfiable per site; min_standing leaves room to reprovision; windows not empty. */
export function checkRollout(sot: LoadedSot): Diagnostic[] {
  const out: Diagnostic[] = [];
  const edges = new Map(sot.groups.map((g) => [g.value.id, g.value.rollout.depends_on]));
  const cycle = findCycle(edges);
  if (cycle) {
    const start = sot.groups.find((g) => g.value.id === cycle[0]);
    if (start)
      out.push(
        at(start.ref, ['rollout', 'depends_on'], 'dependency', `dependency cycle: ${cycle.join(' -> ')}`),
      );
  }
  for (const { value: site, ref } of sot.sites)
    checkWindows(ref, site.policy.reboot_windows, ['policy', 'reboot_windows'], out);
  const counts = new Map<string, Map<string, number>>();
  for (const { value: host, siteDir } of sot.hosts) {
    const perGroup = counts.get(siteDir) ?? new Map<string, number>();
    perGroup.set(host.group, (perGroup.get(host.group) ?? 0) + 1);
    counts.set(siteDir, perGroup);
  }
  for (const { value: group, ref } of sot.groups) {
    const rules = group.rollout;
    if (rules.depends_on.includes(group.id)) {
      out.push(at(ref, ['rollout', 'depends_on'], 'dependency', `host group ${group.id} depends on itself`));
    }
    if (rules.reboot_windows) checkWindows(ref, rules.reboot_windows, ['rollout', 'reboot_windows'], out);
    for (const [siteId, perGroup] of [...counts].sort(([a], [b]) => a.localeCompare(b))) {
      const size = perGroup.get(group.id) ?? 0;
      if (size === 0 || sot.incompleteSites.has(siteId)) continue;
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
        if (dep !== group.id && edges.has(dep) && !perGroup.get(dep)) {
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
  return out;
}
