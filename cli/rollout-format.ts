// What `vaquero rollout` prints: pure functions from rollout data to text, no Temporal calls.
import {
  resultCounts,
  sha7,
  type HostProgress,
  type RolloutStatus,
  type SiteRolloutResult,
} from '../schemas/rollout';

/** One rollout as `rollout list` shows it; `counts` is missing when the rollout did not say. */
export interface RolloutRow {
  workflowId: string;
  site: string;
  commit: string;
  phase: string;
  /** Temporal's execution status: RUNNING, COMPLETED, TERMINATED, ... */
  execution: string;
  startTime: Date;
  closeTime?: Date;
  counts?: RolloutStatus['counts'];
}

/** A rollout's status with what the CLI adds: where it runs and the step of each running host. */
export interface StatusView {
  workflowId: string;
  execution: string;
  startTime: Date;
  closeTime?: Date;
  status: RolloutStatus;
  /** Host name -> "stage 1 dhcp", from the host workflows' `host-status` query. */
  steps: Map<string, string>;
}

export function table(rows: string[][]): string {
  const widths = rows.reduce<number[]>(
    (w, row) => row.map((cell, i) => Math.max(w[i] ?? 0, cell.length)),
    [],
  );
  return rows
    .map((row) => `  ${row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ')}`.trimEnd())
    .join('\n');
}

export function timestamp(date: Date): string {
  return `${date.toISOString().slice(0, 19).replace('T', ' ')}Z`;
}

export function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`;
  return `${Math.floor(s / 86_400)}d${Math.floor(s / 3600) % 24}h`;
}

export function progressText(counts: RolloutStatus['counts'] | undefined): string {
  if (!counts) return '?';
  const failed = counts.failed > 0 ? `, ${counts.failed} failed` : '';
  return `${counts.succeeded}/${counts.total} done${failed}`;
}

export function listText(rows: RolloutRow[], now: Date): string {
  if (rows.length === 0) return '';
  const lines = [['ID', 'SITE', 'COMMIT', 'PHASE', 'PROGRESS', 'STARTED']];
  for (const r of rows) {
    const started = `${timestamp(r.startTime)} (${ago(now.getTime() - r.startTime.getTime())} ago)`;
    lines.push([r.workflowId, r.site, sha7(r.commit), r.phase, progressText(r.counts), started]);
  }
  return `${table(lines)}\n`;
}

function countsText(c: RolloutStatus['counts']): string {
  return `${c.total} hosts: ${c.succeeded} succeeded, ${c.running} running, ${c.failed} failed, ${c.pending} pending`;
}

function stepOf(name: string, host: HostProgress, steps: Map<string, string>): string {
  if (host.state === 'failed' && host.failedAt) return `stage ${host.failedAt.stage} ${host.failedAt.step}`;
  return steps.get(name) ?? host.step ?? '';
}

/** What the operator can send next, for the phases that wait on one. */
export function nextStep(view: StatusView): string | undefined {
  if (view.execution !== 'RUNNING') return undefined;
  const id = view.workflowId;
  const failed = Object.entries(view.status.hosts).find(([, h]) => h.state === 'failed')?.[0] ?? '<host>';
  switch (view.status.phase) {
    case 'waiting-approval':
      return `vaquero rollout approve ${id}`;
    case 'soaking':
      return `vaquero rollout approve ${id} (cuts the soak short)   or   vaquero rollout abort ${id} --reason "..."`;
    case 'paused':
      return `vaquero rollout resume ${id}`;
    case 'halted':
      if (view.status.waitingFor?.startsWith('gate '))
        return `vaquero rollout approve ${id} (go on despite the gate)   or   vaquero rollout abort ${id} --reason "..."`;
      return `vaquero rollout retry-host ${id} ${failed}   or   vaquero rollout abort ${id} --reason "..."`;
    default:
      return undefined;
  }
}

export function statusText(view: StatusView, now: Date): string {
  const { status } = view;
  const started = `started ${timestamp(view.startTime)} (${ago(now.getTime() - view.startTime.getTime())} ago)`;
  const closed = view.closeTime ? `, closed ${timestamp(view.closeTime)}` : '';
  // A rollout ends as a COMPLETED workflow whatever its phase; other endings are worth saying.
  const ending = ['RUNNING', 'COMPLETED'].includes(view.execution)
    ? ''
    : ` (${view.execution.toLowerCase()})`;
  const lines = [
    `${view.workflowId}: site ${status.site}, commit ${status.commit}`,
    `  ${started}${closed}${ending}`,
    `  phase:   ${status.phase}${status.waitingFor ? `, waiting for: ${status.waitingFor}` : ''}`,
    `  wave:    ${status.wave}/${status.waves}`,
    `  hosts:   ${countsText(status.counts)}`,
  ];
  const next = nextStep(view);
  if (next) lines.push(`  next:    ${next}`);
  const rows = [['HOST', 'GROUP', 'WAVE', 'STATE', 'STEP', 'ERROR']];
  const shown = Object.entries(status.hosts)
    .filter(([, h]) => h.state !== 'pending' && h.state !== 'carried-over')
    .sort(([a, x], [b, y]) => x.wave - y.wave || a.localeCompare(b));
  for (const [name, h] of shown) {
    const attempt = h.attempt > 1 ? ` (attempt ${h.attempt})` : '';
    rows.push([
      name,
      h.group,
      String(h.wave),
      `${h.state}${attempt}`,
      stepOf(name, h, view.steps),
      h.error ?? '',
    ]);
  }
  if (shown.length > 0) lines.push('', table(rows));
  const { page } = status;
  if (page && (page.offset > 0 || page.offset + page.limit < page.total)) {
    const last = Math.min(page.total, page.offset + page.limit);
    lines.push(
      `  (hosts ${page.offset + 1}-${last} of ${page.total} shown: --offset, --limit and --state page through them)`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** The rollout in one line, for `watch` into a file or a pipe: printed again only when it changes. */
export function summaryLine(
  status: Pick<RolloutStatus, 'phase' | 'waitingFor' | 'wave' | 'waves' | 'counts'>,
): string {
  const waiting = status.waitingFor ? ` (waiting for: ${status.waitingFor})` : '';
  return `${status.phase}${waiting}, wave ${status.wave}/${status.waves}, ${countsText(status.counts)}`;
}

/** One line per host whose state or step changed since the previous status. */
export function hostChanges(previous: StatusView | undefined, next: StatusView): string[] {
  const lines: string[] = [];
  const describe = (view: StatusView | undefined, name: string) => {
    const h = view?.status.hosts[name];
    if (!h) return '';
    const step = stepOf(name, h, view.steps);
    return `${h.state}${step ? ` ${step}` : ''}${h.error ? `: ${h.error}` : ''}`;
  };
  for (const name of Object.keys(next.status.hosts).sort()) {
    const now = describe(next, name);
    const before = describe(previous, name);
    const state = next.status.hosts[name]?.state;
    if (now === before || (!previous && (state === 'pending' || state === 'carried-over'))) continue;
    lines.push(`${name} ${now}`);
  }
  return lines;
}

/** How a closed rollout ended, from its result. */
export function resultLine(workflowId: string, r: SiteRolloutResult): string {
  const n = resultCounts(r);
  const counts = `${n.succeeded} succeeded, ${n.failed} failed, ${n.remaining} not started`;
  return `${workflowId} ${r.phase}: ${counts}${r.failed.length > 0 ? ` (failed: ${r.failed.join(', ')})` : ''}`;
}
