// The agent's Temporal worker outlives Temporal outages: the boot services keep serving while the
// worker reconnects, so an agent started with Temporal down picks its task queue up later.
import type { Client } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import type { AgentConfig } from './config';
import type { Logger } from './state/event-delivery';
import { createAgentWorker, type AgentBootState } from './worker';
import { deploymentVersion } from '../activities/build-id';

export interface WorkerLoopDeps {
  client: Client;
  boot: AgentBootState;
  logger: Logger;
  /** Environment that BMC and job secrets `{ env: VAR }` are read from. */
  secretsEnv: Record<string, string | undefined>;
  /** How long to wait between attempts to reach Temporal. */
  retryMs: number;
}

export interface WorkerLoop {
  /** Shuts the worker down and waits for the loop to end. */
  stop(): Promise<void>;
}

const describe = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Runs the agent's worker, reconnecting every `retryMs` while Temporal is unreachable (reported once per outage). */
export function keepWorkerRunning(config: AgentConfig, deps: WorkerLoopDeps): WorkerLoop {
  let stopping = false;
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
  const loop = async () => {
    let reported = false;
    while (!stopping) {
      let connection: NativeConnection | undefined;
      try {
        connection = await NativeConnection.connect({ address: config.temporalAddress });
        await runWorker(config, deps, connection, {
          stopping: () => stopping,
          running(w) {
            worker = w;
            if (w) reported = false;
          },
        });
      } catch (err) {
        if (!reported)
          deps.logger.warn('Temporal unreachable; boot services go on, the worker retries', {
            address: config.temporalAddress,
            error: describe(err),
          });
        reported = true;
      } finally {
        await connection?.close().catch(() => undefined);
      }
      if (!stopping) await pause(deps.retryMs);
    }
  };
  const done = loop();
  return {
    async stop() {
      stopping = true;
      wake?.();
      if (worker && worker.getState() === 'RUNNING') worker.shutdown();
      await done;
    },
  };
}

interface WorkerState {
  stopping(): boolean;
  /** The worker that runs now, undefined once it has stopped. */
  running(worker: Worker | undefined): void;
}

/** One worker on one connection, until it stops or the connection fails. */
async function runWorker(
  config: AgentConfig,
  deps: WorkerLoopDeps,
  connection: NativeConnection,
  state: WorkerState,
): Promise<void> {
  const version = deploymentVersion(config.deployment, config.buildId);
  const agent = await createAgentWorker({
    site: config.site,
    connection,
    namespace: config.namespace,
    client: deps.client,
    stateDir: config.stateDir,
    secretsEnv: deps.secretsEnv,
    simTimeScale: config.simTimeScale,
    simPowerLatencyMs: config.simPowerLatencyMs,
    inDoubtGraceMs: config.inDoubtGraceMs,
    logger: deps.logger,
    boot: deps.boot,
    version,
  });
  state.running(agent.worker);
  deps.logger.info('agent started', {
    site: config.site,
    taskQueue: `vaquero-agent-${config.site}`,
    buildId: version.buildId,
  });
  try {
    if (!state.stopping()) await agent.worker.run();
  } finally {
    state.running(undefined);
    agent.sim.close();
  }
}
