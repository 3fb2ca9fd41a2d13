// What the site-wide boot state (issue 13) costs a boot request, without the network and its noise
// (not a benchmark of its own; docs/benchmarks.md): the same asset app answering /ipxe/<mac> and a
// kernel GET with its token, once on an in-memory map of the armed hosts (the benchmarks' netboot
// before), once on the agent's NetbootTable filled by its arms watch, with events through the
// SeenReporter (./site-wide.ts). DHCP likewise: relayed DISCOVERs through the handler, once on a
// plain map of the leases (mapBackend), once through the agent's per-packet lookups (bootLookups)
// on the same state. In-process, alternating, the median of the rounds.
//
//   npx tsx scripts/bench/lib/site-wide-cost.ts [--hosts 1000] [--requests 4000] [--rounds 5]
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { BOOTREQUEST, MessageType, type DhcpPacket } from '../../../agent/dhcp/codec';
import { handleDhcp } from '../../../agent/dhcp/handler';
import { leasesFromModel, mapBackend, relayFilter, servedCidrs } from '../../../agent/dhcp/leases';
import { createAssetApp } from '../../../agent/http/app';
import { bootLookups } from '../../../agent/services';
import type { AssetAppDeps } from '../../../agent/http/deps';
import { macSlug } from '../../../sot/ipv4';
import { AGENT, armAll, benchHosts, COMMIT, KERNEL_PATH, loadBenchModel, SITE, writeBenchSot } from './model';
import { siteWideState } from './site-wide';

const { values } = parseArgs({
  options: {
    hosts: { type: 'string', default: '1000' },
    requests: { type: 'string', default: '4000' },
    rounds: { type: 'string', default: '5' },
  },
});
const hosts = benchHosts(Number(values.hosts));
const requests = Number(values.requests);
const rounds = Number(values.rounds);
const dir = await mkdtemp(path.join(tmpdir(), 'vq-site-wide-cost-'));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
try {
  await writeBenchSot(path.join(dir, 'sot'), hosts);
  const model = await loadBenchModel(path.join(dir, 'sot'));
  await mkdir(path.join(dir, 'files', path.dirname(KERNEL_PATH)), { recursive: true });
  await writeFile(path.join(dir, 'files', KERNEL_PATH), Buffer.alloc(4096, 1));
  const armed = armAll(hosts);
  let events = 0;
  const sink = { emit: () => void events++ };
  const base: Omit<AssetAppDeps, 'netboot' | 'events'> = {
    models: { forCommit: (c) => Promise.resolve(c === COMMIT ? model : undefined), current: () => model },
    site: SITE,
    filesDir: path.join(dir, 'files'),
    log: () => undefined,
  };
  const memory = createAssetApp({
    ...base,
    netboot: {
      lookup: (mac) => Promise.resolve(armed.get(mac)),
      list: () => Promise.resolve([...armed.values()]),
    },
    events: sink,
  });
  const state = await siteWideState([...armed.values()], sink);
  const siteWide = createAssetApp({ ...base, netboot: state.netboot, events: state.events });
  const entries = [...armed.values()];
  const run = async (app: ReturnType<typeof createAssetApp>, kind: 'script' | 'kernel') => {
    const started = performance.now();
    for (let i = 0; i < requests; i++) {
      const entry = entries[i % entries.length];
      if (!entry) continue;
      const url =
        kind === 'script' ? `/ipxe/${macSlug(entry.mac)}` : `/files/${KERNEL_PATH}?token=${entry.token}`;
      const res = await app.request(url);
      if (res.status !== 200) throw new Error(`${url}: ${res.status}`);
      await res.arrayBuffer();
    }
    return requests / ((performance.now() - started) / 1000);
  };
  for (const kind of ['script', 'kernel'] as const) {
    await run(memory, kind);
    await run(siteWide, kind);
    const figures = { memory: [] as number[], siteWide: [] as number[] };
    for (let r = 0; r < rounds; r++) {
      figures.memory.push(await run(memory, kind));
      figures.siteWide.push(await run(siteWide, kind));
    }
    const [m, s] = [median(figures.memory), median(figures.siteWide)];
    console.log(
      `${kind === 'script' ? '/ipxe/<mac>' : 'kernel GET with token'}, ${hosts.length} armed: ` +
        `in-memory map ${m.toFixed(0)} req/s, site-wide state ${s.toFixed(0)} req/s (${(s / m).toFixed(2)})`,
    );
  }
  // DHCP: the same DISCOVERs (relayed, as perfdhcp sends them) through either lookup.
  const discover = (mac: string): DhcpPacket => {
    const chaddr = new Uint8Array(16);
    chaddr.set(Buffer.from(mac.replaceAll(':', ''), 'hex'));
    return {
      ...{ op: BOOTREQUEST, htype: 1, hlen: 6, hops: 0, xid: 1, secs: 0, flags: 0, ciaddr: '0.0.0.0' },
      ...{ giaddr: '10.213.0.2', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', chaddr, sname: '', file: '' },
      options: new Map([[53, Uint8Array.of(MessageType.Discover)]]),
    };
  };
  const packets = hosts.map((h) => discover(h.mac));
  const plain = mapBackend(leasesFromModel(model, SITE), relayFilter(servedCidrs(model, SITE)));
  const agent = bootLookups(model, SITE, AGENT, {
    models: { onChange: () => () => undefined },
    ...{ netboot: state.netboot, events: state.events, log: () => undefined },
  });
  const dhcp = (backend: typeof plain, sink: { emit: typeof state.events.emit }) => {
    const started = performance.now();
    for (let i = 0; i < requests * 25; i++) {
      const packet = packets[i % packets.length];
      if (!packet) continue;
      const r = handleDhcp(packet, { serverIp: '10.213.0.1', backend, now: new Date() });
      if (r.outcome !== 'offer') throw new Error(`DISCOVER: ${r.outcome}`);
      if (r.event) sink.emit(r.event);
    }
    return (requests * 25) / ((performance.now() - started) / 1000);
  };
  const dhcpFigures = { memory: [] as number[], siteWide: [] as number[] };
  for (let r = -1; r < rounds; r++) {
    const [m, s] = [dhcp(plain, sink), dhcp(agent.backend, agent.events)];
    if (r < 0) continue; // warm-up
    dhcpFigures.memory.push(m);
    dhcpFigures.siteWide.push(s);
  }
  const [dm, ds] = [median(dhcpFigures.memory), median(dhcpFigures.siteWide)];
  console.log(
    `DHCP DISCOVER, ${hosts.length} armed: plain map ${dm.toFixed(0)}/s, agent lookups with the ` +
      `site-wide state ${ds.toFixed(0)}/s (${(ds / dm).toFixed(2)})`,
  );
  agent.unsubscribe();
  await state.stop();
  console.log(`events ${events}; site-wide ${JSON.stringify(state.counts)}`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
