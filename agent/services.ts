// The agent's boot services: DHCP, TFTP and the HTTP asset server, all answering from the model
// cache and the netboot table the worker's activities arm and disarm, all reporting to one sink.
import { statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { createServer, type Server } from 'node:http';
import type { BootEventSink } from '../schemas/rollout';
import type { NetbootTable } from './state/netboot-table';
import type { Model } from '../schemas/model';
import type { BootEvent } from '../schemas/rollout';
import type { Agent } from '../schemas/site';
import { armedBackend, leasesFromModel, relayFilter, servedCidrs, type HostLease } from './dhcp/leases';
import { agentEntry, checkBootAddress, ServiceConfigError } from './agent-entry';
import { startDhcpServer, type DhcpServer, type DhcpServerOptions } from './dhcp/server';
import type { AssetLog } from './http/app';
import { assetListener } from './http/listener';
import { newRefusalCounts, type BootRefusalCounts } from './http/boot-guard';
import type { ModelCache } from './state/model-cache';
import { startRadvd, type Radvd } from './ra';
import { startTftpServer, type TftpServer } from './tftp/server';

export interface BootServicesConfig {
  site: string;
  /** This agent's entry in the site's `agents` (its `name`); the first entry when unset. */
  agentName?: string;
  /** The boot interface (logs, radvd). The agent's namespace should hold only this one (docs/agent.md). */
  bootInterface?: string;
  /** The agent's IPv4 address on the boot network; default: the host of its `asset_url`. */
  bootAddress?: string;
  dhcp: boolean;
  dhcpPort?: number;
  /** The PXE boot server port of proxy mode (4011). */
  proxyPort?: number;
  tftp: boolean;
  tftpRoot: string;
  tftpHost?: string;
  tftpPort?: number;
  http: boolean;
  httpHost?: string;
  /** Default: the port of its `asset_url` (80 without one). */
  httpPort?: number;
  /** Served under /files/. */
  filesDir: string;
  routerAdvertisements: boolean;
  /** An IPv6 prefix (`fd77::/64`) advertised for SLAAC; without one the RA carries no prefix. */
  raPrefix?: string;
  /** Where radvd's generated config and pid file go. */
  stateDir: string;
}

export interface ServiceLog {
  level: 'info' | 'warn' | 'error';
  msg: string;
  service: 'dhcp' | 'tftp' | 'http' | 'ra' | 'services';
  [field: string]: unknown;
}

export interface BootServicesDeps {
  models: ModelCache;
  netboot: NetbootTable;
  events: BootEventSink;
  log: (entry: ServiceLog) => void;
}

export interface BootServices {
  dhcp?: DhcpServer;
  tftp?: TftpServer;
  /** The HTTP server's bound port (useful with port 0). */
  httpPort?: number;
  /** Boot requests of armed hosts the HTTP server refused (bad or no token, other address), by reason. */
  httpRefusals: BootRefusalCounts;
  stop(): Promise<void>;
}

export { ServiceConfigError };

/** TFTP sees an IP, not a MAC: the lease table says whose the IP is. */
export function tftpEventMapper(leases: () => ReadonlyMap<string, HostLease>, inner: BootEventSink) {
  return {
    emit(event: BootEvent): void {
      if (event.mac || event.kind !== 'tftp') return inner.emit(event);
      const ip = event.detail?.split(' ')[0];
      for (const lease of leases().values()) {
        if (lease.ipv4 === ip) return inner.emit({ ...event, mac: lease.mac });
      }
      inner.emit(event);
    },
  } satisfies BootEventSink;
}

/** What every service is started with: the agent's settings and the one lease table and event path. */
interface ServiceContext {
  config: BootServicesConfig;
  deps: BootServicesDeps;
  agent: Agent;
  assetUrl: URL;
  bootAddress: string;
  backend: DhcpServerOptions['backend'];
  events: BootEventSink;
}

interface RunningService {
  name: string;
  close(): Promise<void>;
}

/**
 * Starts the enabled services. They need the site's model for the agent's address and DHCP mode, so
 * this waits for the cache's first model (at once after a restart: it is on disk).
 */
export async function startBootServices(
  config: BootServicesConfig,
  deps: BootServicesDeps,
): Promise<BootServices> {
  const { models, log } = deps;
  const first = await models.ready();
  const agent = agentEntry(first.model, config.site, config.agentName, config.bootAddress);
  const assetUrl = new URL(agent.asset_url);
  const bootAddress = config.bootAddress ?? assetUrl.hostname;
  if (!/^\d+\.\d+\.\d+\.\d+$/.test(bootAddress))
    throw new ServiceConfigError(
      `the boot address must be an IPv4 address (got ${bootAddress}); pass --boot-address`,
    );
  // DHCP asks the netboot table synchronously, per packet: it is read before the first one.
  await deps.netboot.list();
  const reservations = bootLookups(first.model, config.site, agent.name, deps);
  const { backend, events } = reservations;
  const ctx: ServiceContext = { config, deps, agent, assetUrl, bootAddress, backend, events };

  const running: RunningService[] = [];
  const result: BootServices = {
    httpRefusals: newRefusalCounts(),
    async stop() {
      reservations.unsubscribe();
      for (const service of running.reverse()) {
        await service
          .close()
          .catch((err: unknown) =>
            log({ level: 'warn', service: 'services', msg: `stopping ${service.name}: ${String(err)}` }),
          );
      }
    },
  };
  try {
    if (config.dhcp) {
      const dhcp = await startDhcp(ctx);
      result.dhcp = dhcp;
      running.push({ name: 'dhcp', close: () => dhcp.close() });
    }
    if (config.tftp) {
      const tftp = await startTftp(ctx);
      result.tftp = tftp;
      running.push({ name: 'tftp', close: () => tftp.close() });
    }
    if (config.http) {
      const http = await startHttp(ctx, result.httpRefusals);
      result.httpPort = http.port;
      running.push(http);
    }
    if (config.routerAdvertisements) running.push(await startRa(ctx));
  } catch (err) {
    await result.stop();
    throw err;
  }
  return result;
}

/**
 * What DHCP and TFTP look up per packet, as every service of the agent shares it: the site's
 * reservations (kept up to date with the model cache until `unsubscribe`), each lease marked armed
 * as the netboot table (the site-wide boot state's cache) says when the packet arrives, and TFTP's
 * events mapped to the MAC of the client's lease. Exported for the DHCP benchmark, which puts this
 * path, not a plain map, under load.
 */
export function bootLookups(
  model: Model,
  site: string,
  agent: string,
  deps: { models: Pick<ModelCache, 'onChange'> } & Pick<BootServicesDeps, 'netboot' | 'events' | 'log'>,
) {
  const reservations = watchReservations(model, site, agent, deps);
  const { leases, servesRelay } = reservations;
  return {
    ...reservations,
    backend: armedBackend(leases, (mac) => deps.netboot.isArmedNow(mac), servesRelay),
    events: tftpEventMapper(leases, deps.events),
  };
}

/** The site's reservations, kept up to date with the model cache until `unsubscribe`. */
function watchReservations(
  model: Model,
  site: string,
  agent: string,
  deps: { models: Pick<ModelCache, 'onChange'> } & Pick<BootServicesDeps, 'log'>,
) {
  const { models, log } = deps;
  let leases = leasesFromModel(model, site, undefined, agent);
  let relays = relayFilter(servedCidrs(model, site, agent));
  const unsubscribe = models.onChange((rev) => {
    // DHCP answers from the newest reservations; a site lost from the model keeps the old ones.
    try {
      leases = leasesFromModel(rev.model, site, undefined, agent);
      relays = relayFilter(servedCidrs(rev.model, site, agent));
      log({
        level: 'info',
        service: 'dhcp',
        msg: 'reservations updated',
        commit: rev.commit,
        hosts: leases.size,
      });
    } catch (err) {
      log({ level: 'warn', service: 'dhcp', msg: `reservations kept: ${(err as Error).message}` });
    }
  });
  return { leases: () => leases, servesRelay: (giaddr: string) => relays(giaddr), unsubscribe };
}

function startDhcp({
  config,
  deps,
  agent,
  bootAddress,
  backend,
  events,
}: ServiceContext): Promise<DhcpServer> {
  const interfaces = config.bootInterface ? [config.bootInterface] : undefined;
  if (interfaces) checkBootAddress(interfaces, bootAddress);
  // `mode`/`proxyPort` are the proxy-mode options of agent/dhcp/server.ts.
  const options: DhcpServerOptions & { mode?: 'server' | 'proxy'; proxyPort?: number } = {
    interface: config.bootInterface,
    ...(interfaces ? { interfaces } : {}),
    address: bootAddress,
    port: config.dhcpPort,
    backend,
    events,
    log: (entry) => deps.log({ service: 'dhcp', ...entry }),
    mode: agent.dhcp_mode,
    ...(config.proxyPort !== undefined ? { proxyPort: config.proxyPort } : {}),
  };
  return startDhcpServer(options);
}

function startTftp({ config, deps, events }: ServiceContext): Promise<TftpServer> {
  if (!statSync(config.tftpRoot, { throwIfNoEntry: false })?.isDirectory())
    throw new ServiceConfigError(
      `the TFTP root ${config.tftpRoot} is not a directory (apt-get install ipxe, or pass --tftp-root)`,
    );
  return startTftpServer({
    host: config.tftpHost ?? '0.0.0.0',
    port: config.tftpPort ?? 69,
    root: config.tftpRoot,
    // Transfers in two threads when there are two cores: a rack's concurrent fetches finish sooner
    // (docs/benchmarks.md); the request port, logs and boot events stay on this thread.
    workers: availableParallelism() > 1 ? 2 : 0,
    events,
    log: (entry) => deps.log({ service: 'tftp', ...entry }),
  });
}

async function startHttp(
  ctx: ServiceContext,
  refusals: BootRefusalCounts,
): Promise<RunningService & { port: number }> {
  const { config, deps, agent, assetUrl, events, backend } = ctx;
  const listener = assetListener({
    models: deps.models,
    site: config.site,
    agent: agent.name,
    netboot: deps.netboot,
    events,
    filesDir: config.filesDir,
    // The site agent's CDN, proxied under /cdn/ and cached in the state directory.
    ...(agent.cdn ? { cdn: { url: agent.cdn, cacheDir: path.join(config.stateDir, 'cdn-cache') } } : {}),
    log: (entry: AssetLog) => deps.log({ service: 'http', ...entry }),
    // In server mode the site's DHCP (this agent or a peer with the same reservations) leases each
    // host its model address; a proxy-DHCP site's leases come from a server the agent cannot ask.
    ...(agent.dhcp_mode === 'server' ? { leaseAddress: (mac) => backend.lookupHost(mac)?.ipv4 } : {}),
    refusals,
  });
  const port = config.httpPort ?? (assetUrl.port ? Number(assetUrl.port) : 80);
  const hostname = config.httpHost ?? '0.0.0.0';
  const server = await new Promise<Server>((resolve, reject) => {
    const s = createServer(listener);
    s.once('error', reject);
    s.listen(port, hostname, () => resolve(s));
  });
  const address = server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  deps.log({ level: 'info', service: 'http', msg: `HTTP on ${hostname}:${bound}` });
  return {
    name: 'http',
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function startRa({ config, deps }: ServiceContext): Promise<RunningService> {
  if (!config.bootInterface) throw new ServiceConfigError('router advertisements need --boot-interface');
  const radvd: Radvd = await startRadvd({
    interface: config.bootInterface,
    prefix: config.raPrefix,
    dir: config.stateDir,
    log: (entry) => deps.log({ service: 'ra', ...entry }),
  });
  return { name: 'radvd', close: () => radvd.stop() };
}
