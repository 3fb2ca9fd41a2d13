// Helpers for tests that run workflows on a real Temporal server (scripts/temporal-dev.sh start).
import type { TestContext } from 'node:test';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Connection } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';

export const workflowsPath = fileURLToPath(new URL('../../workflows/index.ts', import.meta.url));

export function temporalAddress(): string {
  return process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233';
}

/**
 * Connects a client to the test server, closed when the test ends. Without a server the test is
 * skipped on a developer's machine (returns undefined) and fails in CI, which must provide one.
 */
export async function connectOrSkip(t: TestContext): Promise<Connection | undefined> {
  const address = temporalAddress();
  let connection: Connection;
  try {
    connection = await Connection.connect({ address, connectTimeout: '5 seconds' });
  } catch (err) {
    const reason = `no Temporal server at ${address} (start one: bash scripts/temporal-dev.sh start)`;
    if (process.env.CI && process.env.CI !== 'false')
      throw new Error(`${reason}; CI must run one`, { cause: err });
    t.skip(reason);
    return undefined;
  }
  t.after(() => connection.close());
  return connection;
}

let runtimeInstalled = false;
let bundle: Promise<{ code: string }> | undefined;

// Bundling takes seconds, so a test file bundles once and every worker in it reuses the code.
export function workflowBundle(): Promise<{ code: string }> {
  if (!runtimeInstalled) {
    Runtime.install({ logger: new DefaultLogger('WARN') });
    runtimeInstalled = true;
  }
  bundle ??= bundleWorkflowCode({ workflowsPath, logger: new DefaultLogger('WARN') });
  return bundle;
}

export interface WorkerOptions {
  /** Prefix of the task queue; a random suffix keeps tests and reruns from sharing one. */
  taskQueue: string;
  activities: object;
}

/**
 * Runs a worker for workflows/ with the given activities on a fresh task queue while `fn` runs,
 * then shuts it down and waits for it. `fn` receives the task queue to start workflows on.
 */
export async function withWorker<T>(
  { taskQueue, activities }: WorkerOptions,
  fn: (taskQueue: string) => Promise<T>,
): Promise<T> {
  const queue = `${taskQueue}-${randomUUID()}`;
  const workflowBundleCode = await workflowBundle();
  const connection = await NativeConnection.connect({ address: temporalAddress() });
  try {
    const worker = await Worker.create({
      connection,
      taskQueue: queue,
      workflowBundle: workflowBundleCode,
      activities,
    });
    return await worker.runUntil(fn(queue));
  } finally {
    await connection.close();
  }
}
