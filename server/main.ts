// The central server: the orchestration worker (vaquero-server), the HTTP app (webhooks, user API,
// probes, metrics) and the local-source pollers. `vaquero server` (cli/server.ts) runs it until
// SIGTERM/SIGINT; `vaquero standalone` and tests start it in-process.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, type WorkerOptions } from '@temporalio/worker';
import { pino } from 'pino';
import { parse as parseYaml } from 'yaml';
import { BootStateStore } from '../activities/store/boot-state-store';
import { FileBootDocs } from '../activities/store/file-boot-docs';
import { FileModelStore } from '../activities/store/file-store';
import type { ModelStore } from '../activities/store/model-store';
import {
  ConfigError,
  parseServerConfig,
  resolveSecrets,
  type LocalSource,
  type Secrets,
  type ServerConfig,
} from './config';
import { GitHubPullRequestChecks } from './github/pull-requests';
import { createApp } from './http/app';
import { listen } from './http/listen';
import type { Log } from './http/log';
import { createMetrics, type ServerMetrics } from './http/metrics';
import { etcdState } from './ha/ha';
import { alwaysLeader, type Leadership } from './ha/leader';
import { pollWhileLeader } from './poller';
import { ensureNamespace, registerSearchAttributes } from './temporal-setup';
import { agentRegistryOptions, createAgentRegistry } from './agent-registry';
import { createServerWorker } from './worker';
import { watchVersion } from './versioning';
import { deploymentVersion, SERVER_DEPLOYMENT, type DeploymentVersion } from '../activities/build-id';

const workflowsPath = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

export interface ServerOptions {
  /** Default: from the config (etcd election when configured, docs/ha.md), else always the leader. */
  leadership?: Leadership;
  /** Default: from the config (etcd when configured, docs/ha.md), else a FileModelStore in `store.dir`. */
  store?: ModelStore;
  /** Default: the config's references, read from `env` and files. */
  secrets?: Secrets;
  /** Where `{ env: NAME }` secrets are read; default process.env. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Default: pino, JSON lines on stdout. */
  log?: Log;
  metrics?: ServerMetrics;
  /** Default: bundle workflows/ at start (seconds); a pre-built bundle starts faster. */
  workflows?: Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'>;
  /**
   * The worker deployment version (default: `vaquero-server`, the package version plus the git
   * commit) and whether to make it current at once (server/versioning.ts says when it becomes current
   * without).
   */
  deployment?: { version?: DeploymentVersion; makeCurrent?: boolean };
}

export interface RunningServer {
  /** http://host:port of the HTTP app, with the bound port. */
  url: string;
  /** Rejects when the worker stops by itself (e.g. Temporal rejected it); stop() resolves it. */
  done: Promise<void>;
  /** Stops taking requests, stops the pollers and the worker, and closes every connection. */
  stop(): Promise<void>;
}

/** The JSON-lines logger of the server process; secrets never reach it, and are redacted if they do. */
export function serverLogger(): Log {
  return pino({
    base: { service: 'vaquero-server' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: {
      paths: ['authorization', '*.authorization', 'token', 'secret', 'payload'],
      censor: '[redacted]',
    },
  });
}

/**
 * The state a server shares with its peers: where model revisions live and who leads. The one place
 * that decides it from the config (an etcd section, in HA, adds both here).
 */
export async function stateFromConfig(
  config: ServerConfig,
  options: Pick<ServerOptions, 'store' | 'leadership' | 'log'>,
): Promise<{ store: ModelStore; bootState: BootStateStore; leadership: Leadership }> {
  const ha = config.ha && etcdState(config.ha.etcd, options.log ?? serverLogger());
  const store = options.store ?? ha?.store ?? new FileModelStore(path.resolve(config.store.dir));
  const bootState =
    ha?.bootState ?? new BootStateStore(new FileBootDocs(path.resolve(config.store.dir, 'boot-state')));
  const leadership = options.leadership ?? ha?.leadership ?? alwaysLeader();
  // An etcd election nobody uses would still hold a lease: close it.
  if (ha && options.leadership) await ha.leadership.close();
  return { store, bootState, leadership };
}

/** Connects to Temporal and, when the config asks, makes the namespace and search attributes. */
async function connectTemporal(config: ServerConfig, log: Log) {
  const { address, namespace } = config.temporal;
  const connection = await Connection.connect({ address, connectTimeout: '10 seconds' }).catch(
    (err: unknown) => {
      throw new Error(`cannot reach Temporal at ${address}: ${(err as Error).message}`, { cause: err });
    },
  );
  try {
    if (config.temporal.setup) {
      await ensureNamespace(connection, namespace);
      await registerSearchAttributes(connection, namespace);
      log.info({ namespace }, 'Temporal namespace and search attributes ready');
    }
    const native = await NativeConnection.connect({ address });
    return { connection, native, client: new Client({ connection, namespace }) };
  } catch (err) {
    await connection.close();
    throw err;
  }
}

export async function startServer(config: ServerConfig, options: ServerOptions = {}): Promise<RunningServer> {
  const log = options.log ?? serverLogger();
  const secrets =
    options.secrets ??
    (await resolveSecrets(config, { env: options.env ?? process.env, readFile: (f) => readFile(f, 'utf8') }));
  const metrics = options.metrics ?? createMetrics();
  const { store, bootState, leadership } = await stateFromConfig(config, { ...options, log });
  const temporal = await connectTemporal(config, log);
  const cleanups: (() => Promise<unknown>)[] = [
    () => temporal.native.close(),
    () => temporal.connection.close(),
    () => leadership.close(),
  ];
  const cleanup = async () => {
    for (const fn of cleanups.splice(0).reverse())
      await fn().catch((err: unknown) => log.warn({ error: (err as Error).message }, 'clean-up failed'));
  };
  // One registry of agents' heartbeats: the agent API writes it, the workflows ask it (siteReachability).
  const agents = createAgentRegistry(agentRegistryOptions(config.agents));
  const version = options.deployment?.version ?? deploymentVersion(SERVER_DEPLOYMENT, undefined);
  try {
    const worker = await createServerWorker({
      connection: temporal.native,
      namespace: config.temporal.namespace,
      client: temporal.client,
      store,
      siteReachability: (site) => agents.site(site).state,
      workflows: options.workflows ?? { workflowsPath },
      metrics,
      log,
      deployment: version,
    });
    const done = worker.run().then(
      () => log.info({}, 'worker stopped'),
      (err: unknown) => {
        log.error({ error: (err as Error).message }, 'worker failed');
        throw err;
      },
    );
    // Handled here too, so an in-process caller that never awaits `done` gets no unhandled rejection.
    done.catch(() => undefined);
    cleanups.push(async () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await done.catch(() => undefined);
    });
    const versions = await watchVersion(
      temporal.client,
      version,
      options.deployment?.makeCurrent ?? false,
      log,
    );
    cleanups.push(() => versions.stop());

    metrics.leader.set(leadership.isLeader() ? 1 : 0);
    const unsubscribe = leadership.onChange((leader) => {
      metrics.leader.set(leader ? 1 : 0);
      log.info({ leader }, leader ? 'leading' : 'not leading');
    });
    cleanups.push(() => Promise.resolve(unsubscribe()));
    const localSources = config.sources.filter((s): s is LocalSource => s.kind === 'local');
    const pollers = pollWhileLeader(leadership, localSources, {
      temporal: temporal.client,
      storeDir: path.resolve(config.store.dir),
      store,
      log,
      metrics,
    });
    cleanups.push(() => pollers.close());

    const pullRequests = secrets.githubToken
      ? new GitHubPullRequestChecks({ config, token: secrets.githubToken, store, metrics })
      : undefined;
    if (pullRequests) cleanups.push(() => pullRequests.idle());
    const app = createApp({
      config,
      secrets,
      temporal: temporal.client,
      store,
      bootState,
      leadership,
      metrics,
      pullRequests,
      agents,
      log,
    });
    const tls = config.tls && {
      cert: await readFile(config.tls.cert, 'utf8'),
      key: await readFile(config.tls.key, 'utf8'),
    };
    const listening = await listen(app, config, tls);
    cleanups.push(() => listening.close());
    const url = `${tls ? 'https' : 'http'}://${config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host}:${listening.port}`;
    log.info({ url, namespace: config.temporal.namespace, leader: leadership.isLeader() }, 'server started');
    return { url, done, stop: cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** The config file: YAML (or JSON, which is YAML); every problem in one message. */
export async function loadServerConfig(file: string): Promise<ServerConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read ${file}: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text, { prettyErrors: true });
  } catch (err) {
    throw new ConfigError(
      `${file} is not valid YAML: ${(err as Error).message.split('\n')[0]?.replace(/:$/, '')}`,
    );
  }
  return parseServerConfig(raw ?? {});
}

/** The Temporal SDK's lines into the same JSON log; the signals are ours, to stop in order. */
export function installRuntime(log: Log) {
  const level = { TRACE: 'info', DEBUG: 'info', INFO: 'info', WARN: 'warn', ERROR: 'error' } as const;
  Runtime.install({
    shutdownSignals: [],
    logger: new DefaultLogger('INFO', (entry) =>
      log[level[entry.level]]({ component: 'temporal-sdk', ...entry.meta }, entry.message),
    ),
  });
}
