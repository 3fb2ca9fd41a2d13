import type { Client } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import { Worker, type WorkerOptions } from '@temporalio/worker';
import { createServerActivities, type ServerActivityDeps } from '../activities/server-activities';
import type { ModelStore } from '../activities/store/model-store';
import { SERVER_TASK_QUEUE } from '../schemas/rollout';

export interface ServerWorkerOptions {
  connection: NativeConnection;
  namespace?: string;
  client: Client;
  store: ModelStore;
  siteReachability?: ServerActivityDeps['siteReachability'];
  /** A pre-built bundle (production, tests that share one) or the path of workflows/index.ts. */
  workflows: Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'>;
}

/** The server's worker on `vaquero-server`: every workflow, and the orchestration activities. */
export async function createServerWorker(options: ServerWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: SERVER_TASK_QUEUE,
    ...options.workflows,
    activities: createServerActivities({
      store: options.store,
      client: options.client,
      siteReachability: options.siteReachability,
    }),
  });
}
