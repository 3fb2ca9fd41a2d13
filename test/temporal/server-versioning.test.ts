// When a `vaquero server` version becomes current (server/versioning.ts, docs/operations/upgrades.md),
// on the real dev server: on a first install by itself; beside a running current version only when
// the operator says so; by itself again once no worker of the current version polls.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { SERVER_DEPLOYMENT, type DeploymentVersion } from '../../activities/build-id';
import { FileModelStore } from '../../activities/store/file-store';
import { currentVersion, registerVersion, watchVersion } from '../../server/versioning';
import { createServerWorker } from '../../server/worker';
import { temporalAddress, workflowBundle } from '../helpers/temporal';
import { startVaquero } from '../helpers/vaquero-env';

const fixture = fileURLToPath(new URL('../fixtures/sot-sim', import.meta.url));
const version = (buildId: string): DeploymentVersion => ({ deploymentName: SERVER_DEPLOYMENT, buildId });

test('a server version becomes current on a first install, by the operator, or when the current one is gone', async (t) => {
  const code = await workflowBundle(); // installs the quiet runtime: before any connection
  const env = await startVaquero(t, { fixture, sites: [], simTimeScale: 1, serverWorker: false });
  if (!env) return;
  const native = await NativeConnection.connect({ address: temporalAddress() });
  const running: { worker: Worker; done: Promise<void> }[] = [];
  t.after(async () => {
    for (const r of running) r.worker.shutdown();
    await Promise.allSettled(running.map((r) => r.done));
    await native.close();
  });
  const store = new FileModelStore(path.join(env.stateDir, 'store'));
  const start = async (v: DeploymentVersion) => {
    const worker = await createServerWorker({
      connection: native,
      namespace: env.namespace,
      client: env.client,
      store,
      workflows: { workflowBundle: code },
      deployment: v,
    });
    running.push({ worker, done: worker.run() });
  };
  const cli = (...args: string[]) =>
    env.cli(
      'worker',
      'deployment',
      'set-current-version',
      '--deployment-name',
      SERVER_DEPLOYMENT,
      ...args,
      '--yes',
    );

  // A first install: the deployment routes to no version (earlier tests in this namespace made one
  // current: back to unversioned, as before any versioned server ran).
  await cli('--unversioned').catch(() => undefined);
  assert.equal(await currentVersion(env.client, SERVER_DEPLOYMENT), undefined);
  const a = version('rules-a');
  await start(a);
  const first = await registerVersion(env.client, a, { makeCurrent: false });
  assert.deepEqual(
    [first.promoted, first.reason],
    [true, 'made current: the deployment had no current version'],
  );

  // B beside A: registered, not current, and its log line says the command that makes it current.
  const b = version('rules-b');
  await start(b);
  const lines: string[] = [];
  const log = {
    info: (_: unknown, msg: string) => lines.push(msg),
    warn: (_: unknown, msg: string) => lines.push(msg),
  };
  const watch = await watchVersion(env.client, b, false, log, 200);
  t.after(() => watch.stop());
  assert.deepEqual(lines, [
    'worker version registered; rules-a stays current until: temporal worker deployment set-current-version ' +
      `--namespace ${env.namespace} --deployment-name vaquero-server --build-id 'rules-b' --yes`,
  ]);
  await delay(1_000);
  assert.equal((await currentVersion(env.client, SERVER_DEPLOYMENT))?.buildId, 'rules-a', 'A stays current');

  // The current version has no worker (an operator pointed it at a version nobody runs): B, still
  // checking, takes over.
  await cli('--build-id', 'rules-gone', '--allow-no-pollers');
  for (let i = 0; lines.length < 2; i++) {
    assert.ok(i < 100, `B never took over: ${lines.join(' | ')}`);
    await delay(100);
  }
  assert.equal(
    lines[1],
    'worker version made current: no worker of the current version rules-gone polls any more',
  );
  assert.equal((await currentVersion(env.client, SERVER_DEPLOYMENT))?.buildId, 'rules-b');

  // The operator's flag (`vaquero server --make-current`) switches back to A at once.
  const back = await registerVersion(env.client, a, { makeCurrent: true });
  assert.deepEqual([back.promoted, back.reason], [true, 'made current (--make-current)']);
  assert.equal((await currentVersion(env.client, SERVER_DEPLOYMENT))?.buildId, 'rules-a');
});
