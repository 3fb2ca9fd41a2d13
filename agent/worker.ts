import { hostname } from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import { Worker } from '@temporalio/worker';
import { createAgentActivities } from '../activities/agent-activities';
import { runJobs } from '../activities/jobs/run-job';
import { createSecretResolver } from '../activities/jobs/secrets';
import { BootTraffic } from './state/boot-traffic';
import { NetbootTable } from './state/netboot-table';
import { PowerLedger } from './state/power-ledger';
import { SeenReporter } from './state/arms-watch';
import type { SiteBootClient } from './feed/site-boot-client';
import type { PowerLedger as PowerLedgerPort } from '../activities/agent-activities';
import { createCommandPower } from '../activities/power/command-power';
import { createIpmiPower } from '../activities/power/ipmi-power';
import { createRedfishPower } from '../activities/power/redfish-power';
import { SimLab } from '../activities/power/sim-power';
import { createSshPower } from '../activities/power/ssh-power';
import { agentTaskQueue } from '../schemas/rollout';
import type { DeploymentVersion } from '../activities/build-id';
import { SignalingEventSink, type Logger } from './state/event-delivery';

export interface AgentWorkerOptions {
  site: string;
  connection: NativeConnection;
  namespace?: string;
  client: Client;
  /** Where the agent keeps its netboot table, power ledger and (for sim BMCs) cycle log. */
  stateDir: string;
  /** Environment that BMC and job secrets `{ env: VAR }` are read from. */
  secretsEnv: Record<string, string | undefined>;
  /** Speeds simulated boots up (0.01: a 30 s boot takes 0.3 s). */
  simTimeScale?: number;
  /** How long a simulated BMC takes to answer a power command. */
  simPowerLatencyMs?: number;
  /** How long a power cycle left in doubt by a crash waits for boot traffic before cycling again. */
  inDoubtGraceMs?: number;
  logger: Logger;
  /** The netboot table and event path shared with the agent's boot services (made here if absent). */
  boot?: AgentBootState;
  /**
   * The version this agent reports to Temporal (`temporal task-queue describe` shows it per poller).
   * Not versioned: an activity task goes to any agent of the site, whatever its version.
   */
  version?: DeploymentVersion;
}

export interface AgentBootState {
  netboot: NetbootTable;
  /** Delivery to workflows, buffered in <stateDir>/events.jsonl. */
  events: SignalingEventSink;
  /** What every boot event goes through first: it remembers when each MAC was last heard. */
  traffic: BootTraffic;
  /** The site's power ledger at the server; absent: the one on this agent's disk. */
  ledger?: PowerLedgerPort;
  /** Reports armed MACs' boot traffic to the server (with `shared`). */
  reporter?: SeenReporter;
}

/**
 * The netboot table and boot event path of an agent's state directory. With `shared` (an agent with
 * a server), the arms and the power ledger are the site's at the server, and netboot.json their cache.
 */
export function createBootState(
  stateDir: string,
  client: Client,
  logger: Logger,
  shared?: SiteBootClient,
  batchWindowMs?: number,
): AgentBootState {
  const netboot = new NetbootTable(path.join(stateDir, 'netboot.json'), shared);
  const events = new SignalingEventSink({
    client,
    netboot,
    logger,
    journal: path.join(stateDir, 'events.jsonl'),
    batchWindowMs,
  });
  const reporter = shared && new SeenReporter(events, shared, (mac) => netboot.isArmedNow(mac), logger);
  const traffic = new BootTraffic(reporter ?? events, path.join(stateDir, 'boot-traffic.log'));
  return { netboot, events, traffic, ...(shared ? { ledger: shared, reporter } : {}) };
}

/** The agent's Temporal worker on `vaquero-agent-<site>`, with its datacenter activities wired. */
export async function createAgentWorker(options: AgentWorkerOptions) {
  const { netboot, events, traffic, ledger } =
    options.boot ?? createBootState(options.stateDir, options.client, options.logger);
  const sim = new SimLab({
    events: traffic,
    cycleLog: path.join(options.stateDir, 'sim-cycles.log'),
    bootsFile: path.join(options.stateDir, 'sim-boots.json'),
    timeScale: options.simTimeScale,
    powerLatencyMs: options.simPowerLatencyMs,
  });
  const resolveSecret = createSecretResolver(options.secretsEnv);
  const activities = createAgentActivities({
    site: options.site,
    netboot,
    ledger: ledger ?? new PowerLedger(path.join(options.stateDir, 'power-ledger.log')),
    traffic,
    inDoubtGraceMs: options.inDoubtGraceMs ?? 120_000,
    powerDriver(target, bmc) {
      switch (bmc.type) {
        case 'sim':
          return sim.driver(target, bmc);
        case 'ipmi':
          return createIpmiPower(bmc, { resolveSecret });
        case 'ssh':
          // No lasting known_hosts: a reprovisioned host comes back with a new host key.
          return createSshPower(bmc, { resolveSecret });
        case 'command':
          return createCommandPower(target, bmc);
        case 'redfish':
          return createRedfishPower(bmc, { resolveSecret });
      }
    },
    jobs: {
      run: (jobs, target, signal) => runJobs(jobs, { ...target, env: {} }, { resolveSecret, signal }),
    },
  });
  const worker = await Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: agentTaskQueue(options.site),
    activities,
    // Unversioned pollers show no build id in `temporal task-queue describe`: their identity does.
    ...(options.version && {
      workerDeploymentOptions: { version: options.version, useWorkerVersioning: false },
      identity: `${options.version.deploymentName}:${options.version.buildId}/${process.pid}@${hostname()}`,
    }),
  });
  return { worker, events, sim, netboot };
}
