// `vaquero agent`: the site agent's process. It parses its configuration once, here, then runs its
// boot services (DHCP, TFTP, HTTP, router advertisements; when it has a model source) and the
// Temporal worker on vaquero-agent-<site> until SIGINT/SIGTERM. The boot services do not wait for
// Temporal: an agent started while Temporal is down serves from its model cache and connects later.
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { AgentConfigSchema, type AgentConfig, type AgentConfigInput } from './config';
import type { Logger } from './state/event-delivery';
import { createServerFeed } from './feed/server-feed';
import { createFileFeed } from './feed/file-feed';
import type { ModelFeed } from './feed/model-feed';
import { ModelCache } from './state/model-cache';
import { RadvdMissingError } from './ra';
import { ServiceConfigError, startBootServices, type BootServices, type ServiceLog } from './services';
import { createAgentWorker, createBootState, type AgentBootState } from './worker';

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

export function agentConfig(args: string[], env: NodeJS.ProcessEnv): AgentConfig {
  const { values } = parseArgs({
    args,
    options: {
      site: { type: 'string' },
      'state-dir': { type: 'string' },
      'temporal-address': { type: 'string' },
      namespace: { type: 'string' },
      'sim-time-scale': { type: 'string' },
      'sim-power-latency-ms': { type: 'string' },
      'in-doubt-grace-ms': { type: 'string' },
      'model-dir': { type: 'string' },
      server: { type: 'string' },
      'token-file': { type: 'string' },
      ca: { type: 'string' },
      'heartbeat-ms': { type: 'string' },
      'model-poll-ms': { type: 'string' },
      'agent-name': { type: 'string' },
      'boot-interface': { type: 'string' },
      'boot-address': { type: 'string' },
      'no-dhcp': { type: 'boolean' },
      'dhcp-port': { type: 'string' },
      'proxy-port': { type: 'string' },
      'no-tftp': { type: 'boolean' },
      'tftp-root': { type: 'string' },
      'tftp-port': { type: 'string' },
      'no-http': { type: 'boolean' },
      'http-host': { type: 'string' },
      'http-port': { type: 'string' },
      'files-dir': { type: 'string' },
      'router-advertisements': { type: 'boolean' },
      'ra-prefix': { type: 'string' },
    },
    strict: true,
  });
  const input = {
    site: values.site ?? env.VAQUERO_SITE,
    stateDir: values['state-dir'] ?? env.VAQUERO_AGENT_STATE ?? '/var/lib/vaquero/agent',
    temporalAddress: values['temporal-address'] ?? env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233',
    namespace: values.namespace ?? env.TEMPORAL_NAMESPACE ?? 'default',
    simTimeScale: values['sim-time-scale'],
    simPowerLatencyMs: values['sim-power-latency-ms'],
    inDoubtGraceMs: values['in-doubt-grace-ms'],
    modelDir: values['model-dir'] ?? env.VAQUERO_MODEL_DIR,
    server: values.server ?? env.VAQUERO_SERVER,
    tokenFile: values['token-file'] ?? env.VAQUERO_TOKEN_FILE,
    caFile: values.ca ?? env.VAQUERO_CA,
    heartbeatMs: values['heartbeat-ms'],
    modelPollMs: values['model-poll-ms'],
    agentName: values['agent-name'],
    bootInterface: values['boot-interface'],
    bootAddress: values['boot-address'],
    dhcp: !values['no-dhcp'],
    dhcpPort: values['dhcp-port'],
    proxyPort: values['proxy-port'],
    tftp: !values['no-tftp'],
    tftpRoot: values['tftp-root'],
    tftpPort: values['tftp-port'],
    http: !values['no-http'],
    httpHost: values['http-host'],
    httpPort: values['http-port'],
    filesDir: values['files-dir'],
    routerAdvertisements: values['router-advertisements'] ?? false,
    raPrefix: values['ra-prefix'],
  } satisfies Partial<AgentConfigInput>;
  return AgentConfigSchema.parse(input);
}

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
  const retryMs = options.temporalRetryMs ?? 5000;
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
  const boot = createBootState(config.stateDir, client, logger);

  let models: ModelCache | undefined;
  let services: Promise<BootServices> | undefined;
  let started: BootServices | undefined;
  let stopping = false;
  const feed: ModelFeed | undefined = config.modelDir
    ? createFileFeed(path.resolve(config.modelDir), config.site)
    : remote?.feed;
  if (feed) {
    const cache = await ModelCache.open({
      stateDir: config.stateDir,
      site: config.site,
      feed,
      pollMs: config.modelPollMs,
      logger,
    });
    models = cache;
    const serviceLog = (entry: ServiceLog) => {
      const { level, msg, ...fields } = entry;
      logger[level](msg, fields);
    };
    const starting = startBootServices(
      {
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
      },
      { models: cache, netboot: boot.netboot, events: boot.traffic, log: serviceLog },
    );
    services = starting;
    // A stop before the first model arrived: the services stop as soon as they are up.
    starting.then(
      (s) => (stopping ? void s.stop() : (started = s)),
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
        remote?.stop();
        await Promise.race([
          boot.events.close(),
          new Promise((resolve) => setTimeout(resolve, 2000).unref()),
        ]);
        await clientConnection.close().catch(() => undefined);
        throw err;
      }
    } else {
      logger.info('no model yet: boot services start with the first one', { modelDir: config.modelDir });
      starting.catch((err: unknown) => logger.error('boot services did not start', { error: describe(err) }));
    }
  }

  let worker: Worker | undefined;
  let wake: (() => void) | undefined;
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  const runWorker = async () => {
    let reported = false;
    while (!stopping) {
      let connection: NativeConnection | undefined;
      try {
        connection = await NativeConnection.connect({ address: config.temporalAddress });
        const agent = await createAgentWorker({
          site: config.site,
          connection,
          namespace: config.namespace,
          client,
          stateDir: config.stateDir,
          secretsEnv: options.secretsEnv ?? process.env,
          simTimeScale: config.simTimeScale,
          simPowerLatencyMs: config.simPowerLatencyMs,
          inDoubtGraceMs: config.inDoubtGraceMs,
          logger,
          boot,
        });
        worker = agent.worker;
        reported = false;
        logger.info('agent started', { site: config.site, taskQueue: `vaquero-agent-${config.site}` });
        try {
          if (!stopping) await agent.worker.run();
        } finally {
          worker = undefined;
          agent.sim.close();
        }
      } catch (err) {
        if (!reported)
          logger.warn('Temporal unreachable; boot services go on, the worker retries', {
            address: config.temporalAddress,
            error: describe(err),
          });
        reported = true;
      } finally {
        await connection?.close().catch(() => undefined);
      }
      if (!stopping) await pause(retryMs);
    }
  };
  const workerDone = runWorker();

  return {
    models,
    services,
    boot,
    async stop() {
      stopping = true;
      wake?.();
      if (worker && worker.getState() === 'RUNNING') worker.shutdown();
      await workerDone;
      remote?.stop();
      await models?.stop();
      await started?.stop();
      // Undelivered events stay in the journal; a call still in flight is cut off after 2 s.
      await Promise.race([boot.events.close(), new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
      await clientConnection.close().catch(() => undefined);
    },
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

function configMessage(err: unknown): string {
  if (err instanceof Error && 'issues' in err)
    return (err as unknown as { issues: { path: PropertyKey[]; message: string }[] }).issues
      .map((i) => `${i.path.join('.')}: ${i.message}`)
      .join('; ');
  return describe(err);
}

/** Entry point of `vaquero agent`; a bad configuration is one line on stderr and exit code 2. */
export async function main(args: string[]): Promise<number> {
  let config: AgentConfig;
  try {
    config = agentConfig(args, process.env);
  } catch (err) {
    process.stderr.write(`vaquero agent: ${configMessage(err)}\n`);
    return 2;
  }
  let agent: RunningAgent;
  try {
    agent = await startAgent(config);
  } catch (err) {
    process.stderr.write(`vaquero agent: ${describe(err)}\n`);
    return err instanceof ServiceConfigError || err instanceof RadvdMissingError ? 2 : 1;
  }
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await agent.stop();
  return 0;
}
