// The agent's boot services (agent/services.ts: DHCP server mode with the PXE port, TFTP, HTTP
// assets) in a process of their own, without Temporal: for tests that run them inside a network
// namespace (`ip netns exec`), where the test process itself cannot bind. They serve the SoT's model
// for every commit; armed MACs come from a NetbootTable file written before the start. Boot events go
// to stdout, one JSON object per line ({"event": ...}) after a {"ready":true} line; logs go to stderr.
// The model cache lives in `boot-services/` beside the netboot file.
//
//   node --import tsx test/helpers/boot-services.ts --sot <dir> --site <id> --netboot <file> --files <dir>
//       [--address 10.77.0.1] [--tftp-root /usr/lib/ipxe] [--http-port 8080]
import path from 'node:path';
import { parseArgs } from 'node:util';
import { PXE_PORT } from '../../agent/dhcp/proxy';
import type { ModelFeed, SiteRevision } from '../../agent/feed/model-feed';
import { startBootServices } from '../../agent/services';
import { ModelCache } from '../../agent/state/model-cache';
import { NetbootTable } from '../../agent/state/netboot-table';
import type { Model } from '../../schemas/model';
import type { BootEvent, BootEventSink } from '../../schemas/rollout';
import { validateSot } from '../../sot/validate';

function fail(message: string): never {
  process.stderr.write(`boot-services: ${message}\n`);
  process.exit(2);
}

const log = (entry: object) => process.stderr.write(`${JSON.stringify(entry)}\n`);

/** A feed that has one model, the SoT's, under whatever commit an armed host names. */
function staticFeed(model: Model): ModelFeed {
  const revision = (commit: string): Promise<SiteRevision> => Promise.resolve({ commit, model });
  return { current: () => revision('sot'), revision };
}

/** The cache the services read, loaded with the SoT's model before they start. */
async function staticCache(model: Model, site: string, stateDir: string): Promise<ModelCache> {
  const cache = await ModelCache.open({
    stateDir,
    site,
    feed: staticFeed(model),
    logger: {
      info: (msg, fields) => log({ level: 'info', service: 'models', msg, ...fields }),
      warn: (msg, fields) => log({ level: 'warn', service: 'models', msg, ...fields }),
    },
  });
  await cache.refresh();
  return cache;
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
const stateDir = path.join(path.dirname(netboot), 'boot-services');
const models = await staticCache(model, site, stateDir);
const events: BootEventSink = {
  emit: (event: BootEvent) => void process.stdout.write(`${JSON.stringify({ event })}\n`),
};
const services = await startBootServices(
  {
    site,
    bootAddress: address,
    dhcp: true,
    // EDK2's PXE asks port 4011 for its boot file after the server's ACK (agent/dhcp/server.ts).
    proxyPort: PXE_PORT,
    tftp: true,
    tftpRoot: values['tftp-root'],
    http: true,
    httpPort: Number(values['http-port']),
    filesDir: files,
    routerAdvertisements: false,
    stateDir,
  },
  { models, netboot: new NetbootTable(netboot), events, log },
).catch((err: unknown) => fail(err instanceof Error ? err.message : String(err)));
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);

const stop = () => {
  void Promise.allSettled([services.stop(), models.stop()]).then(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
