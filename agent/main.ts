// `vaquero agent`: the site agent's process. It parses its configuration once, here, then runs its
// boot services (DHCP, TFTP, HTTP, router advertisements; when it has a model source) and the
// Temporal worker on vaquero-agent-<site> until SIGINT/SIGTERM. The boot services do not wait for
// Temporal: an agent started while Temporal is down serves from its model cache and connects later.
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { AGENT_USAGE, agentConfig, configMessage } from './args';
import type { AgentConfig } from './config';
import type { Logger } from './state/event-delivery';
import { createServerFeed } from './feed/server-feed';
import { SiteBootClient } from './feed/site-boot-client';
import { watchArms } from './state/arms-watch';
import { createFileFeed } from './feed/file-feed';
import type { ModelFeed } from './feed/model-feed';
import { ModelCache } from './state/model-cache';
import { RadvdMissingError } from './ra';
import {
  ServiceConfigError,
  startBootServices,
  type BootServices,
  type BootServicesConfig,
  type ServiceLog,
} from './services';
import { createBootState, type AgentBootState } from './worker';
import { keepWorkerRunning } from './worker-loop';

export interface AgentLogger extends Logger {
  error(msg: string, fields?: object): void;
}

function jsonLog(level: string) {
  return (msg: string, fields?: object) =>
    process.stderr.write(`${JSON.stringify({ level, time: new Date().toISOString(), msg, ...fields })}\n`);
}

export const stderrLogger: AgentLogger = {
  info: jsonLog('info'),
  warn: jsonLog('warn'),
  error: jsonLog('error'),
};

export interface RunningAgent {
  /** The agent's model cache; undefined without a model source (worker-only agent). */
  models?: ModelCache;
  /** Resolves with the started boot services (at once when a model was cached, else at the first model). */
  services?: Promise<BootServices>;
  /** The netboot table and boot event path shared by the services and the worker. */
  boot: AgentBootState;
  /** Stops the services and the worker; buffered events stay on disk for the next start. */
  stop(): Promise<void>;
}

export interface StartAgentOptions {
  logger?: AgentLogger;
  /** Environment that BMC and job secrets `{ env: VAR }` are read from (default process.env). */
  secretsEnv?: Record<string, string | undefined>;
  /** How long to wait between attempts to reach Temporal (default 5 s). */
  temporalRetryMs?: number;
}

const describe = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * Starts an agent in this process: boot services first (when configured), then the worker, which
 * keeps trying to reach Temporal in the background. Throws on a bad configuration found at start
 * (ServiceConfigError, RadvdMissingError) or a port that cannot be bound.
 */
export async function startAgent(
  config: AgentConfig,
  options: StartAgentOptions = {},
): Promise<RunningAgent> {
  const logger = options.logger ?? stderrLogger;
  // Lazy: events are buffered on disk and delivered once Temporal answers. No gRPC retry interceptor:
  // the sink retries itself, and a retry timer of the interceptor firing after close() would throw.
  const clientConnection = Connection.lazy({ address: config.temporalAddress, interceptors: [] });
  const client = new Client({ connection: clientConnection, namespace: config.namespace });
  let remote: Awaited<ReturnType<typeof serverFeed>> | undefined;
  try {
    remote = config.server ? await serverFeed(config, logger) : undefined;
  } catch (err) {
    await clientConnection.close().catch(() => undefined);
    throw err;
  }
  const boot = createBootState(config.stateDir, client, logger, remote?.boot, config.eventBatchMs);
  // With a server, the site's arms live there; this agent's netboot.json follows them (docs/ha.md).
  const arms = remote && watchArms(remote.boot, boot.netboot, logger);
  const stopArms = async () => {
    boot.reporter?.close();
    await arms?.stop();
  };

  let stopping = false;
  const feed: ModelFeed | undefined = config.modelDir
    ? createFileFeed(path.resolve(config.modelDir), config.site)
    : remote?.feed;
  const modelServices = feed
    ? await startModelServices(config, feed, { boot, logger, stopping: () => stopping }, async () => {
        await stopArms();
        remote?.stop();
        await closeEvents(boot);
        await clientConnection.close().catch(() => undefined);
      })
    : undefined;
  // A retried arm on this agent keeps the arming (and token) of its crashed attempt only if it sees
  // it, so the worker waits for the site's arms (5 s at most). Nothing else does: a stop during the
  // wait ends it, and the agent stops without ever starting the worker.
  let endWait: () => void = () => undefined;
  const waited = new Promise<void>((resolve) => {
    endWait = resolve;
    setTimeout(resolve, 5_000).unref();
  });
  const worker = Promise.race([arms?.ready, waited]).then(() =>
    stopping
      ? undefined
      : keepWorkerRunning(config, {
          client,
          boot,
          logger,
          secretsEnv: options.secretsEnv ?? process.env,
          retryMs: options.temporalRetryMs ?? 5000,
        }),
  );

  return {
    models: modelServices?.models,
    services: modelServices?.services,
    boot,
    async stop() {
      stopping = true;
      endWait();
      await (await worker)?.stop();
      await boot.reporter?.flush();
      await stopArms();
      remote?.stop();
      await modelServices?.stop();
      await closeEvents(boot);
      await clientConnection.close().catch(() => undefined);
    },
  };
}

/** Undelivered events stay in the journal; a call still in flight is cut off after 2 s. */
async function closeEvents(boot: AgentBootState): Promise<void> {
  await Promise.race([boot.events.close(), new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
}

interface ModelServices {
  models: ModelCache;
  services: Promise<BootServices>;
  /** Stops the model cache, then the boot services if they are up. */
  stop(): Promise<void>;
}

interface ModelServicesDeps {
  boot: AgentBootState;
  logger: AgentLogger;
  /** Whether the agent is stopping: services that come up after that are stopped at once. */
  stopping: () => boolean;
}

/**
 * Opens the model cache and starts the boot services on its model. A failed start with a model
 * already cached throws, after `abort` has released what else would keep the process alive.
 */
async function startModelServices(
  config: AgentConfig,
  feed: ModelFeed,
  deps: ModelServicesDeps,
  abort: () => Promise<void>,
): Promise<ModelServices> {
  const { boot, logger } = deps;
  const cache = await ModelCache.open({
    stateDir: config.stateDir,
    site: config.site,
    feed,
    pollMs: config.modelPollMs,
    logger,
  });
  const serviceLog = (entry: ServiceLog) => {
    const { level, msg, ...fields } = entry;
    logger[level](msg, fields);
  };
  let started: BootServices | undefined;
  const starting = startBootServices(serviceConfig(config), {
    models: cache,
    netboot: boot.netboot,
    events: boot.traffic,
    log: serviceLog,
  });
  // A stop before the first model arrived: the services stop as soon as they are up.
  starting.then(
    (s) => (deps.stopping() ? void s.stop() : (started = s)),
    () => undefined,
  );
  // One poll first, so that a first start with a reachable feed reports a bad set-up as an error.
  await cache.refresh();
  cache.start();
  if (cache.currentRevision()) {
    try {
      await starting;
    } catch (err) {
      // Nothing may keep the process alive after a failed start: the feed, the replay of
      // buffered events (they stay on disk) and the connection all stop here.
      await cache.stop();
      await abort();
      throw err;
    }
  } else {
    logger.info('no model yet: boot services start with the first one', { modelDir: config.modelDir });
    starting.catch((err: unknown) => logger.error('boot services did not start', { error: describe(err) }));
  }
  return {
    models: cache,
    services: starting,
    async stop() {
      await cache.stop();
      await started?.stop();
    },
  };
}

function serviceConfig(config: AgentConfig): BootServicesConfig {
  return {
    site: config.site,
    agentName: config.agentName,
    bootInterface: config.bootInterface,
    bootAddress: config.bootAddress,
    dhcp: config.dhcp,
    dhcpPort: config.dhcpPort,
    proxyPort: config.proxyPort,
    tftp: config.tftp,
    tftpRoot: config.tftpRoot,
    tftpPort: config.tftpPort,
    http: config.http,
    httpHost: config.httpHost,
    httpPort: config.httpPort,
    filesDir: config.filesDir ?? path.join(config.stateDir, 'files'),
    routerAdvertisements: config.routerAdvertisements,
    raPrefix: config.raPrefix,
    stateDir: config.stateDir,
  };
}

/** The server's agent API as the model feed, and a heartbeat every `heartbeatMs`. */
async function serverFeed(config: AgentConfig, logger: AgentLogger) {
  const read = async (file: string, what: string) => {
    try {
      return await readFile(file, 'utf8');
    } catch (err) {
      throw new ServiceConfigError(`cannot read ${what} ${file}: ${describe(err)}`);
    }
  };
  const token = (await read(config.tokenFile ?? '', '--token-file')).trim();
  if (!token) throw new ServiceConfigError(`--token-file ${config.tokenFile} is empty`);
  const ca = config.caFile ? await read(config.caFile, '--ca') : undefined;
  if (new URL(config.server ?? '').protocol === 'http:')
    logger.warn('--insecure-http: the agent token travels unencrypted', { server: config.server });
  const feed = createServerFeed({
    url: config.server ?? '',
    token,
    site: config.site,
    ...(ca ? { ca } : {}),
  });
  const version = await agentVersion();
  const agent = config.agentName ?? hostname();
  let failing = false;
  const beat = () =>
    feed.heartbeat({ agent, version }).then(
      () => {
        if (failing) logger.info('heartbeat accepted again', { server: config.server });
        failing = false;
      },
      (err: unknown) => {
        if (!failing) logger.warn('heartbeat failing', { server: config.server, error: describe(err) });
        failing = true;
      },
    );
  void beat();
  const timer = setInterval(() => void beat(), config.heartbeatMs);
  return {
    feed,
    boot: new SiteBootClient(feed, agent),
    stop() {
      clearInterval(timer);
      feed.close();
    },
  };
}

async function agentVersion(): Promise<string> {
  try {
    const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Entry point of `vaquero agent`; a bad configuration is one line on stderr and exit code 2. */
export async function main(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(AGENT_USAGE);
    return 0;
  }
  let config: AgentConfig;
  try {
    config = agentConfig(args, process.env);
  } catch (err) {
    process.stderr.write(`vaquero agent: ${configMessage(err)}\n`);
    return 2;
  }
  // Handled from the start: a stop asked for while the agent starts waits for the start, then stops
  // it, instead of killing the process with buffered events unflushed.
  let onSignal: () => void = () => undefined;
  const stopAsked = new Promise<void>((resolve) => (onSignal = resolve));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    let agent: RunningAgent;
    try {
      agent = await startAgent(config);
    } catch (err) {
      process.stderr.write(`vaquero agent: ${describe(err)}\n`);
      return err instanceof ServiceConfigError || err instanceof RadvdMissingError ? 2 : 1;
    }
    await stopAsked;
    await agent.stop();
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
