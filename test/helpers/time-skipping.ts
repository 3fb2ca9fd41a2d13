// The time-skipping test server (Java, from Maven Central: scripts/install-test-server.sh) for workflow
// tests whose timers run for hours: a rollout that waits for a reboot window, a boot-step timeout.
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import proto from '@temporalio/proto';
import { agentTaskQueue, SERVER_TASK_QUEUE } from '../../schemas/rollout';
import { SEARCH_ATTRIBUTES } from '../../schemas/search-attributes';
import { workflowsPath } from './temporal';

/** The wrapper the install script writes; TEMPORAL_TEST_SERVER names another one. */
export function testServerPath(): string {
  const cache = process.env.VAQUERO_CACHE ?? '/var/cache/vaquero';
  return process.env.TEMPORAL_TEST_SERVER ?? path.join(cache, 'bin/temporal-test-server');
}

let runtimeInstalled = false;
let bundle: Promise<{ code: string }> | undefined;

function installQuietRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  try {
    Runtime.install({ logger: new DefaultLogger('WARN') });
  } catch {
    // Another helper of this test process installed the runtime first; its logger is as good.
  }
}

/** The workflows/ bundle, made once per test process (bundling takes seconds). */
export function timeSkippingBundle(): Promise<{ code: string }> {
  installQuietRuntime();
  bundle ??= bundleWorkflowCode({ workflowsPath, logger: new DefaultLogger('WARN') });
  return bundle;
}

/**
 * Starts a time-skipping test server for one test, torn down when the test ends. Without the server
 * the test is skipped on a developer's machine (returns undefined) and fails in CI, which installs it.
 */
export async function timeSkippingEnvOrSkip(t: TestContext): Promise<TestWorkflowEnvironment | undefined> {
  const executable = testServerPath();
  if (!existsSync(executable)) {
    const reason = `no time-skipping test server at ${executable} (install it: bash scripts/install-test-server.sh)`;
    if (process.env.CI && process.env.CI !== 'false') throw new Error(`${reason}; CI must install it`);
    t.skip(reason);
    return undefined;
  }
  installQuietRuntime();
  const env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: executable } },
  });
  t.after(() => env.teardown());
  // Workflows upsert Vaquero's search attributes; the test server refuses ones it was not told of.
  // It has no ListSearchAttributes, so server/temporal-setup.ts's registration cannot be used.
  const keyword = proto.temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD;
  await env.connection.operatorService.addSearchAttributes({
    namespace: env.namespace ?? 'default',
    searchAttributes: Object.fromEntries(Object.keys(SEARCH_ATTRIBUTES).map((name) => [name, keyword])),
  });
  return env;
}

/**
 * Runs the server's workflows and activities and one site agent's activities on the test server
 * while `fn` runs, or until the test is cancelled (its timeout): workers left polling would keep the
 * test process alive. The time-skipping server cannot run the real agent: tests pass stand-ins.
 */
export async function withWorkers<T>(
  t: TestContext,
  env: TestWorkflowEnvironment,
  site: string,
  activities: { server: object; agent: object },
  fn: () => Promise<T>,
): Promise<T> {
  const common = { connection: env.nativeConnection, shutdownGraceTime: '1 second' };
  const serverWorker = await Worker.create({
    ...common,
    taskQueue: SERVER_TASK_QUEUE,
    workflowBundle: await timeSkippingBundle(),
    activities: activities.server,
  });
  const agentWorker = await Worker.create({
    ...common,
    taskQueue: agentTaskQueue(site),
    activities: activities.agent,
  });
  const cancelled = new Promise<never>((_, reject) =>
    t.signal.addEventListener('abort', () => reject(new Error('test cancelled')), { once: true }),
  );
  return serverWorker.runUntil(agentWorker.runUntil(Promise.race([fn(), cancelled])));
}

/** How long a closed workflow ran, by the server's clock (which runs on after a result is awaited). */
export async function closedAfterMs(handle: WorkflowHandle): Promise<number> {
  const { startTime, closeTime } = await handle.describe();
  return (closeTime?.getTime() ?? Infinity) - startTime.getTime();
}
