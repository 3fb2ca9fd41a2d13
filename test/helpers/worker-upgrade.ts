// Version N+1 of the server worker beside the running N (test/fixtures/upgrade-next), and the switch
// to it while a rollout has hosts in flight, as docs/operations/upgrades.md does it: for
// test/replay/record-histories.ts (the `rollout-worker-upgrade` scenario).
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { temporal } from '@temporalio/proto';
import { bundleWorkflowCode, DefaultLogger, NativeConnection } from '@temporalio/worker';
import { SERVER_DEPLOYMENT } from '../../activities/build-id';
import { FileModelStore } from '../../activities/store/file-store';
import { registerVersion } from '../../server/versioning';
import { createServerWorker } from '../../server/worker';
import { statusQuery } from '../../workflows/messages';
import { temporalAddress } from './temporal';
import type { VaqueroEnv } from './vaquero-env';

const nextWorkflows = fileURLToPath(new URL('../fixtures/upgrade-next/index.ts', import.meta.url));

/** The build ids of the workers that completed a history's workflow tasks, in order. */
export function taskBuildIds(history: temporal.api.history.v1.IHistory): string[] {
  return (history.events ?? []).flatMap((e) => {
    const id = e.workflowTaskCompletedEventAttributes?.deploymentVersion?.buildId;
    return id ? [id] : [];
  });
}

/**
 * Starts version `buildId` of the server worker with the N+1 workflows, waits until the rollout has
 * hosts done, in flight and pending, then makes it current with `temporal worker deployment
 * set-current-version`. Returns what stops the worker (after the rollout closed).
 */
export async function upgradeMidRollout(
  env: VaqueroEnv,
  rolloutId: string,
  buildId: string,
): Promise<() => Promise<void>> {
  const workflowBundle = await bundleWorkflowCode({
    workflowsPath: nextWorkflows,
    logger: new DefaultLogger('WARN'),
  });
  const connection = await NativeConnection.connect({ address: temporalAddress() });
  const version = { deploymentName: SERVER_DEPLOYMENT, buildId };
  const worker = await createServerWorker({
    connection,
    namespace: env.namespace,
    client: env.client,
    store: new FileModelStore(path.join(env.stateDir, 'store')),
    workflows: { workflowBundle },
    deployment: version,
  });
  const done = worker.run();
  const stop = async () => {
    worker.shutdown();
    await done;
    await connection.close();
  };
  try {
    await registerVersion(env.client, version, { makeCurrent: false });
    for (let i = 0; ; i++) {
      const { counts } = await env.client.workflow.getHandle(rolloutId).query(statusQuery);
      if (counts.succeeded >= 1 && counts.running >= 1 && counts.pending >= 1) break;
      if (i > 3_000) throw new Error(`${rolloutId}: never hosts done, in flight and pending at once`);
      await delay(10);
    }
    const id = ['--deployment-name', SERVER_DEPLOYMENT, '--build-id', buildId, '--yes'];
    await env.cli('worker', 'deployment', 'set-current-version', ...id);
    return stop;
  } catch (err) {
    await stop();
    throw err;
  }
}
