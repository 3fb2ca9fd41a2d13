// The agent's three boot servers (DHCP server mode, TFTP, HTTP assets) in one process, without
// Temporal: for tests and benchmarks that run them inside a network namespace (`ip netns exec`), where
// the test process itself cannot bind. Armed MACs come from a NetbootTable file written before the
// start. Boot events go to stdout, one JSON object per line ({"event": ...}); logs go to stderr.
//
//   tsx cli/lab/boot-services.ts --sot <dir> --site <id> --netboot <file> --files <dir>
//       [--address 10.77.0.1] [--tftp-root /usr/lib/ipxe] [--http-port 8080]
import dgram from 'node:dgram';
import { parseArgs } from 'node:util';
import { serve } from '@hono/node-server';
import type { BootEventSink } from '../../schemas/rollout';
import { NetbootTable } from '../../agent/state/netboot-table';
import { validateSot } from '../../sot/validate';
import { decode, encode } from '../../agent/dhcp/codec';
import { leasesFromModel, mapBackend, type LeaseBackend } from '../../agent/dhcp/leases';
import { handleProxyDhcp, PXE_PORT } from '../../agent/dhcp/proxy';
import { startDhcpServer } from '../../agent/dhcp/server';
import { createAssetApp } from '../../agent/http/app';
import { startTftpServer } from '../../agent/tftp/server';
import type { BootEvent } from '../../schemas/rollout';

function fail(message: string): never {
  process.stderr.write(`boot-services: ${message}\n`);
  process.exit(2);
}

const { values } = parseArgs({
  options: {
    sot: { type: 'string' },
    site: { type: 'string' },
    netboot: { type: 'string' },
    files: { type: 'string' },
    address: { type: 'string', default: '10.77.0.1' },
    'tftp-root': { type: 'string', default: '/usr/lib/ipxe' },
    'http-port': { type: 'string', default: '8080' },
  },
});
const { sot, site, netboot, files, address } = values;
if (!sot || !site || !netboot || !files) fail('--sot, --site, --netboot and --files are required');

const result = await validateSot(sot);
const model = result.model ?? fail(`${sot} is not a valid SoT: ${JSON.stringify(result.diagnostics)}`);
const table = new NetbootTable(netboot);
const armed = new Set((await table.list()).map((e) => e.mac));
const leases = leasesFromModel(model, site, armed);
const macByIp = new Map([...leases.values()].map((l) => [l.ipv4, l.mac]));

const log = (entry: object) => process.stderr.write(`${JSON.stringify(entry)}\n`);
const events: BootEventSink = {
  emit(event: BootEvent) {
    // TFTP never sees a MAC: its detail is "<client ip> <file>", mapped here as the agent does.
    const mac = event.mac || macByIp.get(event.detail?.split(' ')[0] ?? '') || '';
    process.stdout.write(`${JSON.stringify({ event: { ...event, mac } })}\n`);
  },
};

/**
 * EDK2's PXE takes an OFFER with option 60 "PXEClient" and no option 43 as a BINL offer and, after the
 * ACK, asks the server on port 4011 for the boot file; startDhcpServer does not listen there (yet), so
 * this answers those REQUESTs with the agent's ProxyDHCP handler.
 */
async function startPxePort(serverIp: string, backend: LeaseBackend): Promise<dgram.Socket> {
  const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  socket.on('message', (msg, rinfo) => {
    const decoded = decode(msg);
    if (!decoded.ok) return;
    const from = { address: rinfo.address, port: rinfo.port };
    const result = handleProxyDhcp(decoded.packet, {
      serverIp,
      backend,
      now: new Date(),
      localPort: PXE_PORT,
      from,
    });
    if (result.log) log({ svc: 'pxe-4011', ...result.log });
    if (result.event) events.emit(result.event);
    if (result.reply)
      socket.send(
        encode(result.reply.packet, result.reply.encode),
        result.reply.to.port,
        result.reply.to.address,
      );
  });
  socket.on('error', (err) => log({ svc: 'pxe-4011', level: 'warn', msg: err.message }));
  await new Promise<void>((resolve) => socket.bind(PXE_PORT, '0.0.0.0', resolve));
  return socket;
}

const pxePort = await startPxePort(address, mapBackend(leases));
const dhcp = await startDhcpServer({
  address,
  backend: mapBackend(leases),
  events,
  log: (e) => log({ svc: 'dhcp', ...e }),
});
const tftp = await startTftpServer({
  host: '0.0.0.0',
  port: 69,
  root: values['tftp-root'],
  events,
  log: (e) => log({ svc: 'tftp', ...e }),
});
const app = createAssetApp({
  models: { forCommit: () => Promise.resolve(model), current: () => model },
  site,
  netboot: table,
  events,
  filesDir: files,
  log: (e) => log({ svc: 'http', ...e }),
});
const http = serve({ fetch: app.fetch, port: Number(values['http-port']), hostname: '0.0.0.0' });
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);

const stop = () => {
  http.close();
  pxePort.close();
  void Promise.allSettled([dhcp.close(), tftp.close()]).then(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
