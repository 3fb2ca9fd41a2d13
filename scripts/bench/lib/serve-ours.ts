// Our protocol servers as the benchmarks run them, one per process, inside the server namespace:
//   tsx scripts/bench/serve-ours.ts dhcp|tftp|http --sot <dir> [--root <dir>] [--port <n>] [--interface <if>]
// Prints READY when listening; log lines and boot events are counted, not written (the peers run with
// per-request logging off too), and the counts are printed on SIGTERM.
// Not agent/services.ts on purpose: each benchmark measures one protocol against its peer (dnsmasq/Kea,
// tftpd, nginx) alone, so only that server runs. DHCP, HTTP and TFTP run with the agent's site-wide
// boot state in their path (./site-wide.ts): the netboot table its arms watch fills, every host
// armed, and boot events through the reporter of armed MACs heard.
import { createServer, type Server } from 'node:http';
import { parseArgs } from 'node:util';
import { startDhcpServer } from '../../../agent/dhcp/server';
import { bootLookups } from '../../../agent/services';
import { assetListener } from '../../../agent/http/listener';
import { startTftpServer } from '../../../agent/tftp/server';
import { AGENT, armAll, benchHosts, COMMIT, loadBenchModel, SITE } from './model';
import { CLIENT_IP, SERVER_IP } from './bench-net';
import { siteWideState } from './site-wide';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    sot: { type: 'string' },
    root: { type: 'string' },
    port: { type: 'string' },
    hosts: { type: 'string', default: '1000' },
    /** TFTP worker threads (0: the transfers on the main thread). */
    'tftp-workers': { type: 'string', default: '0' },
    /** The boot interface, bound to as the agent binds it (its relay filter on too). */
    interface: { type: 'string' },
  },
});
const kind = positionals[0];
const counts = { logs: 0, events: 0 };
const log = () => void counts.logs++;
const events = { emit: () => void counts.events++ };
/** What the site-wide state did during the run, printed with the counts. */
const report = async (state: Awaited<ReturnType<typeof siteWideState>>) => {
  await state.stop();
  console.log(`SITE-WIDE ${JSON.stringify(state.counts)}`);
};
let close: () => Promise<unknown> = () => Promise.resolve();

if (kind === 'dhcp') {
  if (!values.sot) throw new Error('--sot is required');
  const model = await loadBenchModel(values.sot);
  // The agent's own per-packet path (bootLookups, as agent/services.ts starts DHCP): reservations
  // from the model, each lease marked armed from the netboot table the arms watch fills (every host
  // armed), the relay filter, and events through the SeenReporter.
  const state = await siteWideState([...armAll(benchHosts(Number(values.hosts))).values()], events);
  const lookups = bootLookups(model, SITE, AGENT, {
    models: { onChange: () => () => undefined },
    netboot: state.netboot,
    events: state.events,
    log,
  });
  const server = await startDhcpServer({
    address: SERVER_IP,
    ...(values.interface ? { interface: values.interface, interfaces: [values.interface] } : {}),
    port: values.port ? Number(values.port) : undefined,
    backend: lookups.backend,
    events: lookups.events,
    log,
  });
  close = () =>
    server
      .close()
      .then(() => lookups.unsubscribe())
      .then(() => report(state));
  process.on('SIGUSR2', () => console.log(`COUNTERS ${JSON.stringify(server.counters)}`));
} else if (kind === 'tftp') {
  if (!values.root) throw new Error('--root is required');
  // Every host armed, the load generator's address the lease of the last one (the longest lookup).
  const hosts = benchHosts(Number(values.hosts));
  const last = hosts.at(-1);
  if (last) last.ipv4 = CLIENT_IP;
  const state = await siteWideState([...armAll(hosts).values()], events);
  const server = await startTftpServer({
    host: '0.0.0.0',
    port: Number(values.port ?? 69),
    root: values.root,
    workers: Number(values['tftp-workers']),
    events: state.tftpEvents(new Map(hosts.map((h) => [h.mac, h]))),
    log,
  });
  close = () => server.close().then(() => report(state));
} else if (kind === 'http') {
  if (!values.sot || !values.root) throw new Error('--sot and --root are required');
  const model = await loadBenchModel(values.sot);
  const state = await siteWideState([...armAll(benchHosts(Number(values.hosts))).values()], events);
  const listener = assetListener({
    models: {
      forCommit: (commit) => Promise.resolve(commit === COMMIT ? model : undefined),
      current: () => model,
    },
    site: SITE,
    netboot: state.netboot,
    events: state.events,
    filesDir: values.root,
    log,
  });
  const server = await new Promise<Server>((resolve) => {
    const s = createServer(listener);
    s.listen(Number(values.port ?? 8080), '0.0.0.0', () => resolve(s));
  });
  close = () => new Promise((resolve) => server.close(resolve)).then(() => report(state));
} else {
  console.error('usage: serve-ours.ts dhcp|tftp|http --sot <dir> [--root <dir>] [--port <n>]');
  process.exit(2);
}

process.once('SIGTERM', () => {
  console.log(`COUNTS ${JSON.stringify(counts)}`);
  void close().finally(() => process.exit(0));
});
console.log('READY');
