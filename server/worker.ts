import type { Client } from '@temporalio/client';
import type { ActivityInboundCallsInterceptor, NativeConnection } from '@temporalio/worker';
import { Worker, type WorkerOptions } from '@temporalio/worker';
import { createServerActivities, type ServerActivityDeps } from '../activities/server-activities';
import type { ModelStore } from '../activities/store/model-store';
import type { DeploymentVersion } from '../activities/build-id';
import { SERVER_TASK_QUEUE } from '../schemas/rollout';
import type { Log } from './http/log';
import type { ServerMetrics } from './http/metrics';
import { sweepOrphansEvery } from './rollouts/orphan-sweep';

export interface ServerWorkerOptions {
  connection: NativeConnection;
  namespace?: string;
  client: Client;
  store: ModelStore;
  siteReachability?: ServerActivityDeps['siteReachability'];
  /** A pre-built bundle (production, tests that share one) or the path of workflows/index.ts. */
  workflows: Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'>;
  /** How many hosts a part of a stored plan holds at most (tests use small parts). */
  planPartHosts?: number;
  /** Where the activities this worker runs are counted. */
  metrics?: Pick<ServerMetrics, 'activities'>;
  /** How often host workflows whose rollout is gone are looked for while the worker runs. */
  orphanSweepMs?: number;
  log?: Log;
  /**
   * The worker deployment version this worker serves (Worker Versioning: each workflow's tasks go to
   * its version; workflows/index.ts says which are pinned). Absent: an unversioned worker.
   */
  deployment?: DeploymentVersion;
}

/** Counts each activity as it ends; the type is a label only if it is one of ours (bounded labels). */
function countingInterceptor(
  counter: ServerMetrics['activities'],
  types: ReadonlySet<string>,
  activityType: string,
): ActivityInboundCallsInterceptor {
  const activity = types.has(activityType) ? activityType : 'other';
  return {
    async execute(input, next) {
      try {
        const result: unknown = await next(input);
        counter.inc({ activity, outcome: 'completed' });
        return result;
      } catch (err) {
        counter.inc({ activity, outcome: 'failed' });
        throw err;
      }
    },
  };
}

/**
 * How long one activation of a workflow may run before the worker thread stops it. The SDK's 5 s is
 * short for a 10,000-host rollout's first activation on a loaded machine (a plan part restored, a
 * batch of hosts started, a stack trace captured per promise), and a stopped activation crashed
 * the worker thread ("async hook stack has become corrupted"), taking the server down.
 */
const ISOLATE_EXECUTION_TIMEOUT = { isolateExecutionTimeout: '60s' } as Partial<WorkerOptions>;

/** The server's worker on `vaquero-server`: every workflow, and the orchestration activities. */
export async function createServerWorker(options: ServerWorkerOptions): Promise<Worker> {
  const activities = createServerActivities({
    store: options.store,
    client: options.client,
    siteReachability: options.siteReachability,
    planPartHosts: options.planPartHosts,
  });
  const counter = options.metrics?.activities;
  const types = new Set(Object.keys(activities));
  const worker = await Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: SERVER_TASK_QUEUE,
    ...options.workflows,
    ...ISOLATE_EXECUTION_TIMEOUT,
    activities,
    ...(options.deployment && {
      workerDeploymentOptions: {
        version: options.deployment,
        useWorkerVersioning: true,
        // Workflows that declare none: the smoke workflow. The rest declare theirs (workflows/index.ts).
        defaultVersioningBehavior: 'AUTO_UPGRADE',
      },
    }),
    interceptors: counter
      ? { activity: [(ctx) => ({ inbound: countingInterceptor(counter, types, ctx.info.activityType) })] }
      : {},
  });
  // Hosts are no children of their rollout (issue 12): while this worker runs, it cancels the
  // host workflows of rollouts that are gone. Every server worker does (a cancel is idempotent).
  const run = worker.run.bind(worker);
  worker.run = async () => {
    const sweep = sweepOrphansEvery({
      client: options.client,
      log: options.log,
      intervalMs: options.orphanSweepMs,
    });
    try {
      return await run();
    } finally {
      await sweep.close();
    }
  };
  return worker;
}
