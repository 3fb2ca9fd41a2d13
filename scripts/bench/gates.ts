// One metric-gate check over a wave (not a test): a real Prometheus (Debian's package) scraping an
// exporter with one gauge per host, a synthetic site of N hosts (scripts/bench/lib/model.ts), and the
// checkGate activity judging all of them with a per-host query (`{host="{{ host.name }}"}`), once
// asking one query at a time and once GATE_QUERY_CONCURRENCY at a time. Prints the wall time of each
// and their ratio, with the load average beside. With --latency-ms, a proxy in front of Prometheus
// holds each answer that long, as a Prometheus across a network or busy with a large TSDB answers
// (this kernel has no netem to delay packets); without it, Prometheus is on this loopback and the
// CPU of this machine is the limit.
//
//   npx tsx scripts/bench/gates.ts [--hosts 2000] [--rounds 3] [--latency-ms 5]
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { checkGate, GATE_QUERY_CONCURRENCY } from '../../activities/gates/check-gate';
import { createSecretResolver } from '../../activities/jobs/secrets';
import type { PlannedGate } from '../../schemas/gates';
import { startPrometheus } from '../../test/helpers/prometheus';
import { benchHosts, loadBenchModel, SITE, writeBenchSot } from './lib/model';

const { values } = parseArgs({
  options: {
    hosts: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '3' },
    'latency-ms': { type: 'string', default: '0' },
  },
});
const latency = Number(values['latency-ms']);
const count = Number(values.hosts);
const rounds = Number(values.rounds);
const cleanups: (() => Promise<void> | void)[] = [];

/** A proxy that holds each answer of `target` for `latency` ms; its URL. */
async function slowProxy(target: string): Promise<string> {
  const server = createServer((req, res) => {
    void (async () => {
      await delay(latency);
      const answer = await fetch(new URL(req.url ?? '/', target));
      res.writeHead(answer.status, { 'content-type': 'application/json' }).end(await answer.text());
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'vaquero-bench-gates-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const hosts = benchHosts(count);
  await writeBenchSot(dir, hosts);
  const model = await loadBenchModel(dir);
  const prom = await startPrometheus({ after: (fn) => void cleanups.push(fn as () => Promise<void>) });
  for (const h of hosts) prom.set(`vaquero_bench_errors{host="${h.name}"}`, 0);
  await prom.seen(`vaquero_bench_errors{host="${hosts[count - 1]!.name}"}`, 0);
  const gate: PlannedGate = {
    name: 'errors',
    from: 'site',
    prometheus: latency > 0 ? await slowProxy(prom.url) : prom.url,
    query: 'vaquero_bench_errors{host="{{ host.name }}"}',
    must: '== 0',
    every: '30s',
    on_unreachable: 'fail',
    on_empty: 'fail',
  };
  const deps = { model: () => Promise.resolve(model), resolveSecret: createSecretResolver({}) };
  const input = { commit: 'bench', site: SITE, hosts: hosts.map((h) => h.name), gate };
  const time = async (concurrency: number) => {
    let best = Infinity;
    for (let r = 0; r < rounds; r++) {
      const start = performance.now();
      const check = await checkGate({ ...deps, concurrency }, input);
      if (!check.ok || check.checked !== count) throw new Error(`check failed: ${JSON.stringify(check)}`);
      best = Math.min(best, performance.now() - start);
    }
    return best;
  };
  const one = await time(1);
  const many = await time(GATE_QUERY_CONCURRENCY);
  const load = loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
  const where = latency > 0 ? `, each answer held ${latency} ms` : ', Prometheus on loopback';
  console.log(`gate check over ${count} hosts${where}, best of ${rounds} (load ${load})`);
  console.log(`  1 query at a time     ${one.toFixed(0).padStart(7)} ms`);
  console.log(`  ${GATE_QUERY_CONCURRENCY} at a time          ${many.toFixed(0).padStart(7)} ms`);
  console.log(`  ratio                 ${(one / many).toFixed(2)}x`);
}

main()
  .catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(async () => {
    for (const fn of cleanups.reverse()) await fn();
  });
