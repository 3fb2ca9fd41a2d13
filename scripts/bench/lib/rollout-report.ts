// What scripts/bench/rollout.ts prints: each run's figures, the worker processes' shares of the work,
// and the runs side by side against issue 12's "Done when" targets.
import type { ProcessShare, RunFigures } from './rollout-run';

const n = (v: number) => v.toLocaleString('en-US');
const ms = (v: number) => `${v.toFixed(1)} ms`;

/** CPU per host, ms: Vaquero's processes (server workers and sim agent), Temporal, PostgreSQL. */
export function cpuPerHost(r: RunFigures) {
  const vaquero = (r.cpuMs.bench + r.cpuMs.servers) / r.hosts;
  const temporal = r.cpuMs.temporal === undefined ? undefined : r.cpuMs.temporal / r.hosts;
  const postgres = r.cpuMs.postgres / r.hosts;
  return { vaquero, temporal, postgres, total: vaquero + (temporal ?? 0) + postgres };
}

function shareLine(p: ProcessShare): string {
  const queues = Object.entries(p.activities)
    .map(([q, count]) => `${n(count)} on ${q}`)
    .join(', ');
  const counted = p.activitiesCounted
    ? `; /metrics: ${n(p.activitiesCounted.completed)} activities completed, ${n(p.activitiesCounted.failed)} failed`
    : '';
  return `  ${p.name} (pid ${p.pid}): ${n(p.workflowTasks)} workflow tasks, activities ${queues || 'none'}, ${n(p.localActivities)} local activities, CPU ${(p.cpuMs / 1000).toFixed(1)} s${counted}`;
}

export function runReport(r: RunFigures): string[] {
  const h = r.history;
  const cpu = cpuPerHost(r);
  const p = h.largestPayload;
  const where = r.servers > 0 ? `${r.servers} vaquero server processes` : 'the server worker in this process';
  return [
    `hosts ${n(r.hosts)}, boot ${r.bootS} s, max_concurrent ${n(r.maxConcurrent)}, ${where}: ${r.phase}, ${n(r.succeeded)} succeeded, ${n(r.failed)} failed`,
    `wall time ${r.wallS.toFixed(1)} s vs ideal ceil(N/M) * boot = ${r.idealS} s: ratio ${(r.wallS / r.idealS).toFixed(3)}, overhead ${(r.wallS - r.idealS).toFixed(1)} s; load average ${r.load[0].toFixed(2)} at the start, ${r.load[1].toFixed(2)} at the end`,
    `history events, every run of every workflow: ${n(h.events)} in ${n(h.runs)} runs of ${n(h.workflows)} workflows, ${(h.events / r.hosts).toFixed(1)} per host (` +
      Object.entries(h.eventsByKind)
        .map(([kind, e]) => `${kind} ${n(e)}`)
        .join(', ') +
      `); site rollout runs ${h.rolloutRuns}`,
    `largest history: ${n(h.largestRun.events)} events (${h.largestRun.workflowId} run ${h.largestRun.runId})`,
    p
      ? `largest payload: ${(p.bytes / 1024).toFixed(1)} KB (${p.workflowId} run ${p.runId}, event ${p.eventId} ${p.eventType}, ${p.field})`
      : 'largest payload: none',
    `CPU per host: Vaquero ${ms(cpu.vaquero)} (this process ${(r.cpuMs.bench / 1000).toFixed(1)} s, server processes ${(r.cpuMs.servers / 1000).toFixed(1)} s)` +
      `, Temporal server ${cpu.temporal === undefined ? 'not found' : ms(cpu.temporal)}` +
      (r.cpuMs.postgres > 0 ? `, PostgreSQL ${ms(cpu.postgres)}` : '') +
      `; ${ms(cpu.total)} in all`,
    'work per worker process (workflow task and activity counts from the histories, by worker identity):',
    ...r.processes.map(shareLine),
  ];
}

interface Row {
  figure: string;
  target: string;
  value: (r: RunFigures) => string;
}

const rows: Row[] = [
  { figure: 'outcome', target: 'completed', value: (r) => `${r.phase} ${n(r.succeeded)}/${n(r.failed)}` },
  { figure: 'wall s', target: '', value: (r) => r.wallS.toFixed(1) },
  { figure: 'ideal s', target: '', value: (r) => String(r.idealS) },
  {
    figure: 'load average, start / end',
    target: '',
    value: (r) => r.load.map((l) => l.toFixed(1)).join(' / '),
  },
  {
    figure: 'wall / ideal',
    target: '<= 1.10 (1k), <= 1.15 (10k)',
    value: (r) => (r.wallS / r.idealS).toFixed(3),
  },
  { figure: 'events per host', target: '<= 25', value: (r) => (r.history.events / r.hosts).toFixed(1) },
  { figure: 'largest history, events', target: '< 10,240', value: (r) => n(r.history.largestRun.events) },
  { figure: 'site rollout runs', target: '', value: (r) => String(r.history.rolloutRuns) },
  {
    figure: 'largest payload, KB',
    target: '< 256',
    value: (r) => ((r.history.largestPayload?.bytes ?? 0) / 1024).toFixed(1),
  },
  { figure: 'CPU per host, Vaquero ms', target: '', value: (r) => cpuPerHost(r).vaquero.toFixed(1) },
  {
    figure: 'CPU per host, Temporal ms',
    target: '',
    value: (r) => cpuPerHost(r).temporal?.toFixed(1) ?? 'n/a',
  },
  { figure: 'CPU per host, PostgreSQL ms', target: '', value: (r) => cpuPerHost(r).postgres.toFixed(1) },
  { figure: 'CPU per host, all ms', target: '<= 120', value: (r) => cpuPerHost(r).total.toFixed(1) },
  {
    figure: 'activities per server process',
    target: 'each > 0',
    value: (r) =>
      r.servers > 0
        ? r.processes
            .filter((p) => p.activitiesCounted)
            .map((p) => n(p.activitiesCounted?.completed ?? 0))
            .join(' / ')
        : '-',
  },
];

/** The runs side by side, a column each, with the issue's target beside each figure. */
export function summaryTable(runs: RunFigures[]): string {
  const head = [
    'figure',
    'target',
    ...runs.map((r) => `${n(r.hosts)} hosts, ${r.bootS} s, mc ${n(r.maxConcurrent)}`),
  ];
  const body = rows.map((row) => [row.figure, row.target, ...runs.map(row.value)]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? '').length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i < 2 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ')} |`;
  const rule = `| ${widths.map((w, i) => (i < 2 ? '-'.repeat(w) : `${'-'.repeat(w - 1)}:`)).join(' | ')} |`;
  return [line(head), rule, ...body.map(line)].join('\n');
}
