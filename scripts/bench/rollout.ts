// Scale benchmark of the rollout workflows (not a test): N sim hosts with a real boot delay, one
// host group with max_concurrent M, on a Temporal server: the dev server, or temporal-server on
// PostgreSQL (scripts/temporal-pg.sh) with --address. Per run it prints wall time against the ideal
// ceil(N/M) * boot; history events over every run of every workflow (a site rollout continues as
// new), the largest single history and the largest payload of any event; CPU per host of Vaquero's
// processes, the Temporal server and PostgreSQL; and which worker process did which work. Runs are
// then printed side by side against issue 12's targets, with `vaquero validate` / `plan` at scale
// (scripts/bench/sot.ts) when --sot is given.
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { runReport, summaryTable } from './lib/rollout-report';
import { measureRollout, type RunFigures, type RunSpec } from './lib/rollout-run';

const usage = `npx tsx scripts/bench/rollout.ts [options]

  --hosts N --boot S --max-concurrent M   one run (default 1000, 30, 100)
  --run N:S:M                             a run; repeat for several, printed side by side
  --preset issue12                        issue 12's runs: --run 1000:30:100 --run 10000:120:1000
                                          --sot 10000,50000
  --servers K                             K real \`vaquero server\` processes share the vaquero-server
                                          worker (default 0: the worker runs in this process)
  --history-limit E                       the site rollout continues as new past E events
  --sot N1,N2                             also validate and plan a synthetic SoT of these sizes
  --address host:port                     Temporal (default $TEMPORAL_ADDRESS or 127.0.0.1:7233)
  --namespace NS                          default vaquero-bench; each run terminates what runs there
  --help`;

const PRESETS: Record<string, { runs: string[]; sot: string }> = {
  issue12: { runs: ['1000:30:100', '10000:120:1000'], sot: '10000,50000' },
};

const { values } = parseArgs({
  options: {
    hosts: { type: 'string', default: '1000' },
    boot: { type: 'string', default: '30' },
    'max-concurrent': { type: 'string', default: '100' },
    run: { type: 'string', multiple: true },
    preset: { type: 'string' },
    servers: { type: 'string', default: '0' },
    'history-limit': { type: 'string' },
    sot: { type: 'string' },
    address: { type: 'string', default: process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233' },
    // Its own namespace lets two runs share a server: each terminates what runs in its namespace.
    namespace: { type: 'string', default: 'vaquero-bench' },
    help: { type: 'boolean' },
  },
});

function fail(message: string): never {
  console.error(`${message}\n\n${usage}`);
  process.exit(2);
}

function positive(text: string, what: string): number {
  const v = Number(text);
  if (!Number.isInteger(v) || v <= 0) fail(`${what}: ${text} is not a positive whole number`);
  return v;
}

function runSpec(text: string): RunSpec {
  const [hosts, boot, mc, extra] = text.split(':');
  if (!hosts || !boot || !mc || extra !== undefined)
    fail(`--run ${text}: expected hosts:boot:max_concurrent`);
  return {
    hosts: positive(hosts, '--run hosts'),
    bootS: positive(boot, '--run boot'),
    maxConcurrent: positive(mc, '--run max_concurrent'),
  };
}

if (values.help) {
  console.log(usage);
  process.exit(0);
}
const preset = values.preset === undefined ? undefined : PRESETS[values.preset];
if (values.preset !== undefined && !preset)
  fail(`--preset ${values.preset}: known presets are ${Object.keys(PRESETS).join(', ')}`);
const specs = (values.run ?? preset?.runs ?? []).map(runSpec);
if (specs.length === 0)
  specs.push({
    hosts: positive(values.hosts, '--hosts'),
    bootS: positive(values.boot, '--boot'),
    maxConcurrent: positive(values['max-concurrent'], '--max-concurrent'),
  });
const servers = values.servers === '0' ? 0 : positive(values.servers, '--servers');
const historyLimit = values['history-limit'] && positive(values['history-limit'], '--history-limit');
const sotSizes = values.sot ?? preset?.sot;

/** scripts/bench/sot.ts in its own process (it measures child processes' peak RSS). */
function sotBench(sizes: string): Promise<{ text: string; result: unknown }> {
  const script = fileURLToPath(new URL('./sot.ts', import.meta.url));
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', script, '--hosts', sizes],
      { maxBuffer: 16 * 1024 * 1024 },
      (err, out, errText) => {
        if (err) return reject(new Error(`scripts/bench/sot.ts failed: ${errText.slice(-2000)}`));
        const lines = out.trimEnd().split('\n');
        const result = lines.find((l) => l.startsWith('RESULT '));
        resolve({
          text: lines.filter((l) => !l.startsWith('RESULT ')).join('\n'),
          result: result ? JSON.parse(result.slice('RESULT '.length)) : undefined,
        });
      },
    );
  });
}

// With the workflows in server processes, nothing here installs the quiet runtime the tests use.
if (servers > 0) Runtime.install({ logger: new DefaultLogger('WARN') });
const report: string[] = [];
const say = (lines: string[]) => {
  console.log(lines.join('\n'));
  report.push(...lines);
};
const runs: RunFigures[] = [];
for (const spec of specs) {
  const run = await measureRollout(spec, {
    address: values.address,
    namespace: values.namespace,
    servers,
    historyLimit: historyLimit || undefined,
  });
  runs.push(run);
  say([...runReport(run), '']);
}
say([summaryTable(runs), '']);
const sot = sotSizes ? await sotBench(sotSizes) : undefined;
if (sot) say(['vaquero validate / plan --json of a synthetic SoT (scripts/bench/sot.ts):', sot.text, '']);
console.log(`RESULT ${JSON.stringify({ runs, sot: sot?.result })}`);
const out = path.join(process.cwd(), '.vaquero', 'bench-rollout.txt');
await mkdir(path.dirname(out), { recursive: true });
await writeFile(out, `${report.join('\n')}\n`);
