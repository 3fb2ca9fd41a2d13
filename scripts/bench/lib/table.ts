// The benchmarks' output: one Markdown table (figures as rows, servers as columns, then ours/peer
// ratios) and one `RESULT <json>` line for scripts and the smoke test.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface Figure {
  name: string;
  /** Value per server; undefined when the server could not be measured. */
  values: Record<string, number | undefined>;
  digits?: number;
  /** False for figures whose ratio means nothing (a share of drops near zero); printed as `-`. */
  ratio?: boolean;
}

export const OURS = 'vaquero';

const fmt = (v: number | undefined, digits = 1) =>
  v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(digits);

/** Renders the table; ratios are ours / peer whatever the direction of the figure (see its name). */
export function renderTable(servers: string[], figures: Figure[]): string {
  const peers = servers.filter((s) => s !== OURS);
  const header = ['figure', ...servers, ...peers.map((p) => `${OURS}/${p}`)];
  const rows = figures.map((f) => {
    const ours = f.values[OURS];
    const ratio = (p: string) => {
      if (f.ratio === false) return '-';
      const peer = f.values[p];
      if (ours === undefined || peer === undefined || peer === 0) return 'n/a';
      return (ours / peer).toFixed(2);
    };
    return [f.name, ...servers.map((s) => fmt(f.values[s], f.digits)), ...peers.map(ratio)];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ')} |`;
  const rule = `| ${widths.map((w, i) => (i === 0 ? '-'.repeat(w) : `${'-'.repeat(Math.max(1, w - 1))}:`)).join(' | ')} |`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

/** Prints the report and keeps a copy in .vaquero/<name>.txt. */
export async function report(
  name: string,
  context: string[],
  servers: string[],
  figures: Figure[],
  notes: string[] = [],
): Promise<void> {
  const text = [...context, '', renderTable(servers, figures), '', ...notes].join('\n').trimEnd();
  console.log(text);
  console.log(
    `RESULT ${JSON.stringify({ servers, figures: figures.map(({ name: n, values }) => ({ name: n, values })) })}`,
  );
  const out = path.join(process.cwd(), '.vaquero', `${name}.txt`);
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, `${text}\n`);
}

/** Machine and load, printed above every table: the figures mean little without them. */
export async function machineContext(): Promise<string> {
  const { cpus, loadavg } = await import('node:os');
  const cpu = cpus();
  return `machine: ${cpu.length} x ${cpu[0]?.model ?? '?'}, load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}, node ${process.version}`;
}

/**
 * Measures every server `rounds` times, interleaved (A B C A B C): on a shared machine the load moves
 * between minutes, and interleaving spreads it over all servers instead of penalising one. A server
 * that fails is not measured again; its failure is returned for the report.
 */
export async function interleave<T>(
  servers: string[],
  rounds: number,
  measure: (name: string) => Promise<T>,
): Promise<{ perRound: Record<string, T>[]; failures: string[] }> {
  const perRound: Record<string, T>[] = [];
  const failures: string[] = [];
  const failed = new Set<string>();
  for (let round = 0; round < rounds; round++) {
    const results: Record<string, T> = {};
    for (const name of servers) {
      if (failed.has(name)) continue;
      try {
        results[name] = await measure(name);
      } catch (err) {
        failed.add(name);
        failures.push(`${name}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    perRound.push(results);
  }
  return { perRound, failures };
}

function median(values: number[]): number | undefined {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (!sorted.length) return undefined;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** The per-value median of the same figures computed for each round. */
export function medianFigures(rounds: Figure[][]): Figure[] {
  const first = rounds[0] ?? [];
  return first.map((figure, i) => {
    const servers = Object.keys(figure.values);
    const values = Object.fromEntries(
      servers.map((s) => [
        s,
        median(rounds.map((r) => r[i]?.values[s]).filter((v): v is number => v !== undefined)),
      ]),
    );
    return { ...figure, values };
  });
}
