// The SoT tooling at scale (not a test): `vaquero validate` and `vaquero plan --json` of a synthetic site
// (scripts/bench/lib/big-sot.ts: control plane, workers, storage with two boot stages, ignition and
// cloud-config, a hosts file per 1,000 hosts) at several sizes, each command a fresh process as an
// operator runs it. The plan is a release change that reprovisions every host. Prints wall time, CPU
// time and peak RSS (GNU time) per size, and the ratios of the largest measured size to the smallest.
//
//   npx tsx scripts/bench/sot.ts [--hosts 10000,50000,200000] [--rounds 1]
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeBigSot } from './lib/big-sot';

const { values } = parseArgs({
  options: {
    hosts: { type: 'string', default: '10000,50000,200000' },
    rounds: { type: 'string', default: '1' },
  },
});
const sizes = values.hosts.split(',').map(Number);
const rounds = Number(values.rounds);
const repo = fileURLToPath(new URL('../..', import.meta.url));

interface Run {
  code: number;
  wall: number;
  cpu: number;
  rssMb: number;
  stdoutBytes: number;
  stderr: string;
}

/** One `vaquero` command under GNU time: `%e %U %S %M` on the last line of its stderr. */
function vaquero(args: string[]): Promise<Run> {
  const argv = ['-f', '%e %U %S %M', process.execPath, 'bin/vaquero.mjs', ...args];
  return new Promise((resolve, reject) => {
    const opts = { cwd: repo, maxBuffer: 1 << 30, timeout: 600_000 };
    execFile('/usr/bin/time', argv, opts, (err, out, errText) => {
      const lines = errText.trimEnd().split('\n');
      const [wall, user, sys, rssKb] = (lines.pop() ?? '').split(' ').map(Number);
      if (wall === undefined || rssKb === undefined || Number.isNaN(rssKb)) {
        reject(new Error(`no figures from GNU time (is /usr/bin/time installed?): ${errText.slice(-500)}`));
        return;
      }
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      const cpu = (user ?? 0) + (sys ?? 0);
      const stderr = lines.join('\n');
      resolve({ code, wall, cpu, rssMb: rssKb / 1024, stdoutBytes: Buffer.byteLength(out), stderr });
    });
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

interface Row {
  hosts: number;
  validate: Run[];
  plan: Run[];
}

async function measure(work: string, hosts: number): Promise<Row> {
  const from = path.join(work, `${hosts}-from`);
  const to = path.join(work, `${hosts}-to`);
  await writeBigSot(from, hosts, '4081.2.0');
  await writeBigSot(to, hosts, '4152.2.1');
  const row: Row = { hosts, validate: [], plan: [] };
  for (let r = 0; r < rounds; r++) {
    row.validate.push(await vaquero(['validate', to]));
    row.plan.push(await vaquero(['plan', to, '--from', from, '--json']));
  }
  await rm(from, { recursive: true, force: true });
  await rm(to, { recursive: true, force: true });
  return row;
}

function outcome(runs: Run[]): string {
  const run = runs[0];
  if (!run || run.code === 0) return 'ok';
  const first = run.stderr.split('\n')[0] ?? '';
  return `exit ${run.code}: ${first.replace(/^[^ ]+: \(file\): /, '')}`;
}

function table(rows: Row[]): string {
  const head = [
    'hosts',
    'validate s',
    'validate CPU s',
    'validate peak RSS MB',
    'plan s',
    'plan CPU s',
    'plan peak RSS MB',
    'plan --json bytes',
    'outcome',
  ];
  const fig = (runs: Run[], key: 'wall' | 'cpu' | 'rssMb', digits: number) =>
    median(runs.map((r) => r[key])).toFixed(digits);
  const body = rows.map((r) => [
    r.hosts.toLocaleString('en-US'),
    fig(r.validate, 'wall', 2),
    fig(r.validate, 'cpu', 2),
    fig(r.validate, 'rssMb', 0),
    fig(r.plan, 'wall', 2),
    fig(r.plan, 'cpu', 2),
    fig(r.plan, 'rssMb', 0),
    (r.plan[0]?.code === 0 ? r.plan[0].stdoutBytes : 0).toLocaleString('en-US'),
    outcome(r.validate),
  ]);
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map(() => '--:')), ...body.map(line)].join('\n');
}

/** Largest over smallest of the sizes that were validated and planned. */
function ratios(rows: Row[]): string {
  const ok = rows.filter((r) => r.validate[0]?.code === 0 && r.plan[0]?.code === 0);
  const [small, big] = [ok[0], ok[ok.length - 1]];
  if (!small || !big || small === big) return '';
  const ratio = (k: 'validate' | 'plan') =>
    (median(big[k].map((r) => r.wall)) / median(small[k].map((r) => r.wall))).toFixed(2);
  return `${big.hosts / small.hosts}x the hosts (${big.hosts} / ${small.hosts}): validate ${ratio('validate')}x the time, plan ${ratio('plan')}x`;
}

const work = await mkdtemp(path.join(tmpdir(), 'vaquero-bench-sot-'));
try {
  console.log(
    `load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}; ${rounds} round(s), medians`,
  );
  const rows: Row[] = [];
  for (const hosts of sizes) {
    rows.push(await measure(work, hosts));
    console.error(`measured ${hosts} hosts`);
  }
  console.log(table(rows));
  console.log(ratios(rows));
  const figures = (runs: Run[]) =>
    runs.map(({ code, wall, cpu, rssMb, stdoutBytes }) => ({ code, wall, cpu, rssMb, stdoutBytes }));
  const result = rows.map((r) => ({ hosts: r.hosts, validate: figures(r.validate), plan: figures(r.plan) }));
  console.log(`RESULT ${JSON.stringify(result)}`);
} finally {
  await rm(work, { recursive: true, force: true });
}
