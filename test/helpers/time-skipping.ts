// The time-skipping test server (Java, from Maven Central: scripts/install-test-server.sh) for workflow
// tests whose timers run for hours: a rollout that waits for a reboot window, a boot-step timeout.
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, Runtime } from '@temporalio/worker';
import proto from '@temporalio/proto';
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
