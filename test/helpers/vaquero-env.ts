// A whole Vaquero on a real Temporal server for workflow tests: a fresh namespace, the server's
// worker, one sim agent per site, and the SoT in a real git repository.
import { execFile, execFileSync } from 'node:child_process';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { readCycleLog, type SimLab } from '../../activities/power/sim-power';
import { FileModelStore } from '../../activities/store/file-store';
import { createAgentWorker } from '../../agent/worker';
import { ensureNamespace, registerSearchAttributes } from '../../server/temporal-setup';
import { createServerWorker } from '../../server/worker';
import { registerVersion } from '../../server/versioning';
import { AGENT_DEPLOYMENT, deploymentVersion, SERVER_DEPLOYMENT } from '../../activities/build-id';
import { connectOrSkip, temporalAddress, workflowBundle } from './temporal';

const run = promisify(execFile);
/** The Temporal CLI the tests shell out to, as an operator would. */
export function temporalCli(): string {
  const cached = path.join(process.env.VAQUERO_CACHE ?? '/var/cache/vaquero', 'bin/temporal');
  return process.env.TEMPORAL_BIN ?? (existsSync(cached) ? cached : 'temporal');
}

const quietLogger = { info: () => undefined, warn: () => undefined };

export interface VaqueroEnv {
  client: Client;
  namespace: string;
  repo: string;
  sot: string;
  stateDir: string;
  /** Commits the working tree of the SoT repository; returns the SHA. */
  commit(message: string): Promise<string>;
  /** Power cycles per `site/host`, as counted at the sim BMCs. */
  cycles(): Promise<Map<string, number>>;
  /** `temporal workflow signal` etc. against this namespace; returns stdout. */
  cli(...args: string[]): Promise<string>;
  /** Injects a failure at a sim host (`site/host`), or clears it. */
  fault(host: string, stage: 'power' | 'dhcp' | 'ipxe' | 'kernel' | 'checkpoint' | undefined): void;
  startAgent(site: string): Promise<void>;
  stopAgent(site: string): Promise<void>;
}

export interface VaqueroOptions {
  fixture: string;
  /** Sites whose agent runs in this process. */
  sites: string[];
  /** Sites whose sim cycle logs `cycles()` reads (default: `sites`). */
  cycleSites?: string[];
  /** The environment the in-process agents read `{ env: VAR }` secrets from. */
  secretsEnv?: Record<string, string>;
  simTimeScale: number;
  /** Default `vaquero-test` (or $VAQUERO_TEST_NAMESPACE). */
  namespace?: string;
  /** The Temporal frontend; default $TEMPORAL_ADDRESS or the dev server's 127.0.0.1:7233. */
  address?: string;
  /** False: no `vaquero-server` worker in this process (the rollout benchmark runs server processes). */
  serverWorker?: boolean;
  /** Hosts per part of a stored plan (the rollout then reads its plan in several parts). */
  planPartHosts?: number;
  /** How often the server worker sweeps for orphaned host workflows (default server/rollouts'). */
  orphanSweepMs?: number;
}

/** A Vaquero that its caller stops with close(): terminates what runs, stops workers, deletes files. */
export interface RunningVaquero extends VaqueroEnv {
  close(): Promise<void>;
}

/** Starts a Vaquero for one test (skipped without a server) and stops it when the test ends. */
export async function startVaquero(t: TestContext, options: VaqueroOptions): Promise<VaqueroEnv | undefined> {
  if (!(await connectOrSkip(t))) return undefined;
  const env = await launchVaquero(options);
  t.after(() => env.close());
  return env;
}

/** The same Vaquero outside node:test (test/replay/record-histories.ts). */
export async function launchVaquero(options: VaqueroOptions): Promise<RunningVaquero> {
  // A connection of our own: connectOrSkip's is closed by a hook that runs before our clean-up.
  const address = options.address ?? temporalAddress();
  const connection = await Connection.connect({ address });
  // One namespace for all tests: a new one takes ~10 s to be usable. Tests run one at a time and each
  // terminates what it left running, so none sees another's workflows.
  const namespace = options.namespace ?? process.env.VAQUERO_TEST_NAMESPACE ?? 'vaquero-test';
  await ensureNamespace(connection, namespace, 1);
  await registerSearchAttributes(connection, namespace);
  const client = new Client({ connection, namespace });
  const work = await mkdtemp(path.join(tmpdir(), 'vaquero-env-'));
  const repo = path.join(work, 'repo');
  const sot = path.join(repo, 'sot');
  const stateDir = path.join(work, 'state');
  await cp(options.fixture, sot, { recursive: true });
  const git = (...args: string[]) =>
    run('git', ['-C', repo, '-c', 'user.name=vaquero-test', '-c', 'user.email=test@example.net', ...args]);
  execFileSync('git', ['init', '-q', '-b', 'main', repo]);

  // Before any native connection: the bundle helper installs the (quiet) runtime.
  const workflowCode = options.serverWorker === false ? undefined : await workflowBundle();
  const native = await NativeConnection.connect({ address });
  const store = new FileModelStore(path.join(stateDir, 'store'));
  const serverVersion = deploymentVersion(SERVER_DEPLOYMENT, undefined);
  const server =
    workflowCode &&
    (await createServerWorker({
      connection: native,
      namespace,
      client,
      store,
      workflows: { workflowBundle: workflowCode },
      planPartHosts: options.planPartHosts,
      orphanSweepMs: options.orphanSweepMs,
      deployment: serverVersion,
    }));
  const running: Promise<void>[] = server ? [server.run()] : [];
  // Versioned as `vaquero server` is, and current at once: a namespace where another commit's server
  // ran last would otherwise keep routing this one's workflows to that version.
  if (server) await registerVersion(client, serverVersion, { makeCurrent: true });
  const agents = new Map<
    string,
    { worker: Worker; done: Promise<void>; sim: SimLab; events: { close(): Promise<void> } }
  >();

  const startAgent = async (site: string) => {
    const agent = await createAgentWorker({
      site,
      connection: native,
      namespace,
      client,
      stateDir: path.join(stateDir, `agent-${site}`),
      secretsEnv: options.secretsEnv ?? {},
      simTimeScale: options.simTimeScale,
      logger: quietLogger,
      version: deploymentVersion(AGENT_DEPLOYMENT, undefined),
    });
    agents.set(site, {
      worker: agent.worker,
      done: agent.worker.run(),
      sim: agent.sim,
      events: agent.events,
    });
  };
  const stopAgent = async (site: string) => {
    const agent = agents.get(site);
    if (!agent) return;
    agent.worker.shutdown();
    await agent.done;
    agent.sim.close();
    // A boot event batch still open would be written to the journal after the state dir is gone.
    await agent.events.close();
    agents.delete(site);
  };
  for (const site of options.sites) await startAgent(site);

  const close = async () => {
    for await (const wf of client.workflow.list({ query: 'ExecutionStatus="Running"' })) {
      await client.workflow
        .getHandle(wf.workflowId, wf.runId)
        .terminate('test finished')
        .catch(() => undefined);
    }
    for (const site of [...agents.keys()]) await stopAgent(site);
    server?.shutdown();
    await Promise.allSettled(running);
    await native.close();
    await connection.close();
    await rm(work, { recursive: true, force: true });
  };

  return {
    close,
    client,
    namespace,
    repo,
    sot,
    stateDir,
    async commit(message) {
      await git('add', '-A');
      await git('commit', '-q', '--allow-empty', '-m', message);
      return (await git('rev-parse', 'HEAD')).stdout.trim();
    },
    async cycles() {
      const all = new Map<string, number>();
      for (const site of options.cycleSites ?? options.sites) {
        for (const [k, v] of await readCycleLog(path.join(stateDir, `agent-${site}`, 'sim-cycles.log')))
          all.set(k, v);
      }
      return all;
    },
    async cli(...args) {
      const { stdout } = await run(temporalCli(), [...args, '--namespace', namespace, '--address', address]);
      return stdout;
    },
    fault(host, stage) {
      const sim = agents.get(host.split('/')[0] ?? '')?.sim;
      if (!sim) throw new Error(`no agent runs for ${host}`);
      if (stage) sim.faults.set(host, stage);
      else sim.faults.delete(host);
    },
    startAgent,
    stopAgent,
  };
}
