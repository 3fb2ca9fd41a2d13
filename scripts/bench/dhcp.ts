// DHCP benchmark (not a test): 4-way exchanges (DISCOVER-OFFER-REQUEST-ACK) per second measured by
// perfdhcp against our server, dnsmasq and Kea, one after the other in one run, each in its own
// network namespace with perfdhcp in the peer namespace. All three hold the same static reservations
// (the synthetic model's MACs), and perfdhcp draws its clients from that MAC list (-M). perfdhcp acts
// as a relay (giaddr set, port 67), so replies are unicast back to it. Ours answers through the
// agent's own per-packet path (bootLookups in agent/services.ts) with the site-wide boot state
// (lib/site-wide.ts): every host armed in the netboot table the arms watch fills, each lease marked
// armed from it per packet, boot events through the reporter of armed MACs heard.
//
// The offered rate is raised (default 1000, 4000, 8000, 16000, 32000/s) to find each server's
// saturation point: the highest offered rate whose exchanges it still completes (>= 95 %).
// perfdhcp reports latency as min/avg/max and standard deviation (no percentiles), all shown.
//
//   npx tsx scripts/bench/dhcp.ts [--quick] [--rounds 2] [--hosts 1000] [--period 10]
//                                 [--rates 1000,4000,8000,16000,32000]
//                                 [--only vaquero,dnsmasq,dnsmasq-ro,kea,kea-mem]
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { benchHosts, writeBenchSot, type BenchHost } from './lib/model';
import {
  CLIENT_IP,
  createBenchNet,
  drain,
  removeOnExit,
  SERVER_IP,
  waitForLine,
  type BenchNet,
} from './lib/bench-net';
import { netnsProblem } from '../../cli/lab/netns';
import { interleave, machineContext, medianFigures, OURS, report, type Figure } from './lib/table';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    hosts: { type: 'string' },
    period: { type: 'string' },
    rates: { type: 'string' },
    only: { type: 'string' },
    rounds: { type: 'string' },
  },
});
const quick = values.quick;
const hostCount = Number(values.hosts ?? (quick ? 200 : 1000));
const rounds = Number(values.rounds ?? (quick ? 1 : 2));
const periodS = Number(values.period ?? (quick ? 1 : 10));
const rates = (values.rates ?? (quick ? '500' : '1000,4000,8000,16000,32000')).split(',').map(Number);
/** Completions below this share of the offered rate: the server is saturated. */
const FOLLOWING = 0.95;
/**
 * Our server keeps no lease state (static reservations only), so each peer runs twice: as deployed,
 * writing its lease file, and with lease persistence off (`-ro`: dnsmasq --leasefile-ro; `-mem`:
 * Kea memfile with persist false), which is the same work as ours.
 */
const SERVERS = [OURS, 'dnsmasq', 'dnsmasq-ro', 'kea', 'kea-mem'];
const selected = values.only ? values.only.split(',') : SERVERS;
const PERFDHCP = '/usr/sbin/perfdhcp';
const PEERS: Record<string, string> = {
  dnsmasq: '/usr/sbin/dnsmasq',
  'dnsmasq-ro': '/usr/sbin/dnsmasq',
  kea: '/usr/sbin/kea-dhcp4',
  'kea-mem': '/usr/sbin/kea-dhcp4',
};

interface PerfResult {
  rate: number;
  sent: number;
  completed: number;
  dropPct: number;
  doAvgMs: number | undefined;
  raAvgMs: number | undefined;
  doMaxMs: number | undefined;
  doStdMs: number | undefined;
}

/** perfdhcp's final report: "Rate:" is completed REQUEST-ACK exchanges over the test period. */
export function parsePerfdhcp(out: string): PerfResult {
  const rate = Number(/^Rate: ([\d.]+)/m.exec(out)?.[1]);
  const section = (name: string) => out.split(`***Statistics for: ${name}***`)[1]?.split('***')[0] ?? '';
  const num = (text: string, key: string) => {
    const m = new RegExp(`^${key}: ([\\d.]+)`, 'm').exec(text);
    return m ? Number(m[1]) : undefined;
  };
  const dO = section('DISCOVER-OFFER');
  const ra = section('REQUEST-ACK');
  const sent = num(dO, 'sent packets') ?? 0;
  const completed = num(ra, 'received packets') ?? 0;
  if (!Number.isFinite(rate) || sent === 0)
    throw new Error(`unexpected perfdhcp output:\n${out.slice(0, 3000)}`);
  return {
    rate,
    sent,
    completed,
    dropPct: (100 * (sent - completed)) / sent,
    doAvgMs: num(dO, 'avg delay'),
    raAvgMs: num(ra, 'avg delay'),
    doMaxMs: num(dO, 'max delay'),
    doStdMs: num(dO, 'std deviation'),
  };
}

async function perfdhcp(net: BenchNet, macs: string, args: string[], timeoutMs: number): Promise<string> {
  try {
    const { stdout } = await net.exec(
      net.client,
      PERFDHCP,
      ['-4', '-M', macs, '-l', CLIENT_IP, ...args, SERVER_IP],
      timeoutMs,
    );
    return stdout;
  } catch (err) {
    // Exit status 3 means "some packets were dropped": the report is still complete.
    const e = err as { code?: number; stdout?: string; message: string };
    if (e.code === 3 && e.stdout) return e.stdout;
    throw new Error(`perfdhcp failed: ${e.message}\n${e.stdout ?? ''}`);
  }
}

/** Exchanges complete: the server is up. (perfdhcp without -r floods, and -n 1 exits before the answer.) */
async function waitAnswering(net: BenchNet, macs: string, tail: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const out = await perfdhcp(net, macs, ['-r', '50', '-p', '1'], 10_000).catch(() => '');
    if (out && parsePerfdhcp(out).completed > 0) return;
    if (Date.now() > deadline) throw new Error(`no DHCP answer after 20 s; server output:\n${tail()}`);
  }
}

async function startServer(name: string, net: BenchNet, dir: string, hosts: BenchHost[]) {
  const sot = path.join(dir, 'sot');
  if (name === OURS) {
    const child = net.spawn(net.server, process.execPath, [
      '--import',
      'tsx',
      path.join(import.meta.dirname, 'lib/serve-ours.ts'),
      'dhcp',
      '--sot',
      sot,
      '--interface',
      net.ifServer,
      '--hosts',
      String(hosts.length),
    ]);
    const tail = drain(child);
    await waitForLine(child, /^READY/, 60_000);
    return { child, tail };
  }
  if (name.startsWith('dnsmasq')) {
    const reservations = path.join(dir, 'dnsmasq-hosts');
    await writeFile(reservations, hosts.map((h) => `${h.mac},${h.ipv4},${h.name}`).join('\n') + '\n');
    const child = net.spawn(net.server, PEERS[name] ?? '', [
      '--no-daemon',
      '--conf-file=/dev/null',
      '--port=0',
      `--interface=${net.ifServer}`,
      '--bind-interfaces',
      '--user=root',
      '--group=root',
      `--pid-file=${path.join(dir, 'dnsmasq.pid')}`,
      `--dhcp-leasefile=${path.join(dir, `${name}.leases`)}`,
      '--dhcp-range=10.213.0.0,static,255.255.0.0,1h',
      `--dhcp-hostsfile=${reservations}`,
      `--dhcp-option=option:router,${SERVER_IP}`,
      '--dhcp-authoritative',
      '--no-ping',
      '--quiet-dhcp',
      '--dhcp-lease-max=100000',
      ...(name === 'dnsmasq-ro' ? ['--leasefile-ro'] : []),
    ]);
    return { child, tail: drain(child) };
  }
  const config = {
    Dhcp4: {
      'interfaces-config': { interfaces: [net.ifServer], 'dhcp-socket-type': 'udp' },
      'lease-database': {
        type: 'memfile',
        name: path.join(dir, `${name}-leases4.csv`),
        'lfc-interval': 0,
        persist: name !== 'kea-mem',
      },
      'host-reservation-identifiers': ['hw-address'],
      'valid-lifetime': 3600,
      subnet4: [
        {
          id: 1,
          subnet: '10.213.0.0/16',
          'option-data': [{ name: 'routers', data: SERVER_IP }],
          reservations: hosts.map((h) => ({ 'hw-address': h.mac, 'ip-address': h.ipv4, hostname: h.name })),
        },
      ],
      loggers: [{ name: 'kea-dhcp4', output_options: [{ output: 'stdout' }], severity: 'WARN' }],
    },
  };
  const file = path.join(dir, 'kea-dhcp4.json');
  await writeFile(file, JSON.stringify(config, null, 2));
  const env = {
    ...process.env,
    KEA_PIDFILE_DIR: dir,
    KEA_LOCKFILE_DIR: dir,
    KEA_LOGGER_DESTINATION: 'stdout',
  };
  const child = net.spawn(net.server, PEERS[name] ?? '', ['-c', file], { env });
  return { child, tail: drain(child) };
}

async function measure(name: string, dir: string, hosts: BenchHost[], macs: string): Promise<PerfResult[]> {
  const net = await createBenchNet();
  try {
    const { child, tail } = await startServer(name, net, dir, hosts);
    await waitAnswering(net, macs, tail);
    // Warm-up: JIT for us, caches for the peers; not reported.
    await perfdhcp(net, macs, ['-r', '500', '-p', '1'], 30_000);
    const results: PerfResult[] = [];
    for (const rate of rates) {
      const out = await perfdhcp(
        net,
        macs,
        ['-r', String(rate), '-p', String(periodS)],
        periodS * 1000 + 60_000,
      );
      results.push(parsePerfdhcp(out));
    }
    if (child.exitCode !== null) throw new Error(`${name} exited during the run:\n${tail()}`);
    if (name === OURS) {
      // What went through the site-wide state: armed MACs reported heard, one batch per 200 ms.
      const stopped = waitForLine(child, /^SITE-WIDE /, 10_000);
      child.kill('SIGTERM');
      siteWide.push((await stopped).replace(/^SITE-WIDE /, ''));
    }
    return results;
  } finally {
    await net.close();
  }
}

const problem =
  (await netnsProblem()) ??
  (existsSync(PERFDHCP) ? undefined : `${PERFDHCP} not found (apt-get install kea-admin)`);
if (problem) {
  console.error(`bench-dhcp: ${problem}`);
  process.exit(1);
}
const servers = selected.filter((s) => {
  const bin = PEERS[s];
  if (bin && !existsSync(bin)) {
    console.error(`bench-dhcp: skipping ${s}: ${bin} not found`);
    return false;
  }
  return SERVERS.includes(s);
});

/** The highest offered rate the server still followed, among those measured (0: none of them). */
function saturation(results: PerfResult[] | undefined): number | undefined {
  if (!results) return undefined;
  let best = 0;
  rates.forEach((rate, i) => {
    const r = results[i];
    if (r && r.rate >= FOLLOWING * rate && rate > best) best = rate;
  });
  return best;
}

const dir = await mkdtemp(path.join(tmpdir(), 'h3-bench-dhcp-'));
/** Our server's site-wide state counts, one per round. */
const siteWide: string[] = [];
removeOnExit(dir);
try {
  const hosts = benchHosts(hostCount);
  await writeBenchSot(path.join(dir, 'sot'), hosts);
  const macs = path.join(dir, 'macs.txt');
  await writeFile(macs, hosts.map((h) => h.mac).join('\n') + '\n');
  const { perRound, failures } = await interleave(servers, rounds, (name) => measure(name, dir, hosts, macs));
  const figuresOf = (results: Record<string, PerfResult[]>): Figure[] =>
    rates
      .flatMap((rate, i) => {
        const pick = (f: (r: PerfResult) => number | undefined) =>
          Object.fromEntries(servers.map((s) => [s, results[s]?.[i] ? f(results[s][i]) : undefined]));
        return [
          { name: `DORA/s at offered ${rate}/s`, values: pick((r) => r.rate) },
          { name: `dropped % at ${rate}/s`, values: pick((r) => r.dropPct), digits: 2, ratio: false },
          { name: `DISCOVER-OFFER avg ms at ${rate}/s`, values: pick((r) => r.doAvgMs), digits: 3 },
          { name: `DISCOVER-OFFER std dev ms at ${rate}/s`, values: pick((r) => r.doStdMs), digits: 3 },
          { name: `DISCOVER-OFFER max ms at ${rate}/s`, values: pick((r) => r.doMaxMs), digits: 2 },
          { name: `REQUEST-ACK avg ms at ${rate}/s`, values: pick((r) => r.raAvgMs), digits: 3 },
        ];
      })
      .concat([
        {
          name: `saturation: highest offered rate/s completed >= ${FOLLOWING * 100} %`,
          values: Object.fromEntries(servers.map((s) => [s, saturation(results[s])])),
          digits: 0,
        },
      ]);
  const figures = medianFigures(perRound.map(figuresOf));
  await report(
    'bench-dhcp',
    [
      `DHCP: perfdhcp -r <rate> -p ${periodS} -M <${hostCount} reserved MACs>, relayed (giaddr); one server at a time, ${rounds} interleaved round(s), median shown`,
      await machineContext(),
    ],
    servers,
    figures,
    [
      ...(siteWide.length ? [`${OURS} site-wide state per round: ${siteWide.join('; ')}`] : []),
      ...failures.map((f) => `FAILED ${f}`),
    ],
  );
  if (failures.length) process.exitCode = 1;
} finally {
  await rm(dir, { recursive: true, force: true });
}
