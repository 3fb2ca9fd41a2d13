// A plan as the text people read: `vaquero plan` prints it, GitHub shows it in a check run.
import type { Plan, SitePlan, Wave } from '../schemas/plan';
import { gateLine } from './plan-gates';

function table(rows: string[][]): string {
  const widths = rows.reduce<number[]>(
    (w, row) => row.map((cell, i) => Math.max(w[i] ?? 0, cell.length)),
    [],
  );
  return rows
    .map((row) => `  ${row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ')}`.trimEnd())
    .join('\n');
}

function siteText(site: SitePlan): string {
  const hosts = site.waves.reduce((n, w) => n + w.hosts.length, 0);
  const head = `site ${site.site} (${site.name}): `;
  if (hosts === 0) return `${head}nothing to reprovision (${site.unchanged.length} unchanged)`;
  const policy = [
    `canary ${site.canary_size}`,
    site.approval_required ? 'approval required after the canary' : 'no approval needed',
    `failure budget ${site.max_fail}`,
  ];
  const lines = [
    `${head}${hosts} to reprovision in ${site.waves.length} waves, ${site.unchanged.length} unchanged; ${policy.join(', ')}`,
  ];
  const groups = site.groups.map((g) => {
    const after = g.depends_on.length > 0 ? `, after ${g.depends_on.join(', ')}` : '';
    const windows = g.reboot_windows.length > 0 ? `, in ${g.reboot_windows.length} reboot window(s)` : '';
    return `${g.group} ${g.changed}/${g.hosts} (batch ${g.batch}, max_fail ${g.max_fail}${after}${windows})`;
  });
  lines.push(`  groups: ${groups.join('; ')}`);
  const rows = [['WAVE', 'GROUP', 'HOST', 'WHY']];
  for (const wave of site.waves) {
    wave.hosts.forEach((h, i) => {
      const label = i === 0 ? `${wave.index}${wave.canary ? ' canary' : ''}` : '';
      rows.push([label, h.group, h.host, h.reasons.join(', ')]);
    });
  }
  lines.push(table(rows));
  lines.push(...site.waves.flatMap(holdLines));
  if (site.removed.length > 0)
    lines.push(`  removed from the model (not touched): ${site.removed.join(', ')}`);
  if (site.skipped.length > 0)
    lines.push(`  changed but never_provision: ${site.skipped.map((s) => s.host).join(', ')}`);
  return lines.join('\n');
}

/** A wave's soak and gates: what the rollout waits for after it. */
function holdLines(wave: Wave): string[] {
  const gates = wave.gates ?? [];
  if (!wave.soak && gates.length === 0) return [];
  const label = `wave ${wave.index}${wave.canary ? ' canary' : ''}`;
  const soak = wave.soak ? `soak ${wave.soak}` : 'no soak';
  const lines = [
    `  after ${label}: ${soak}${gates.length > 0 ? `, ${gates.length} gate(s), each must hold:` : ''}`,
  ];
  for (const g of gates) lines.push(`    [${g.from}] ${gateLine(g)} (${g.prometheus})`);
  return lines;
}

export function planText(plan: Plan): string {
  return `plan ${plan.to} (from ${plan.from})\n\n${plan.sites.map(siteText).join('\n\n')}\n`;
}
