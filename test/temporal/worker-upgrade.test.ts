// docs/operations/upgrades.md on the real dev server: version N of the server worker starts a
// rollout, version N+1 (test/fixtures/upgrade-next: host workflows changed so that N's histories no
// longer replay) runs beside it and is made current with the documented `temporal` command while
// hosts are in flight, N is stopped once no workflow is pinned to it, and the rollout completes.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, test, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Worker } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { defaultBuildId, SERVER_DEPLOYMENT, type DeploymentVersion } from '../../activities/build-id';
import { FileModelStore } from '../../activities/store/file-store';
import { applyWorkflowId, SERVER_TASK_QUEUE, type SiteRolloutResult } from '../../schemas/rollout';
import { registerVersion } from '../../server/versioning';
import { createServerWorker } from '../../server/worker';
import { statusQuery } from '../../workflows/messages';
import { temporalAddress, workflowBundle } from '../helpers/temporal';
import { startVaquero, type VaqueroEnv } from '../helpers/vaquero-env';

const fixture = fileURLToPath(new URL('../fixtures/sot-sim', import.meta.url));
const nextWorkflows = fileURLToPath(new URL('../fixtures/upgrade-next/index.ts', import.meta.url));
const N: DeploymentVersion = { deploymentName: SERVER_DEPLOYMENT, buildId: 'upgrade-test-n' };
const N1: DeploymentVersion = { deploymentName: SERVER_DEPLOYMENT, buildId: 'upgrade-test-n1' };
const TIMEOUTS = { dhcp: 10_000, ipxe: 10_000, kernel: 10_000, checkpoint: 10_000 };
const SLOW = { dhcp: 30_000, ipxe: 30_000, kernel: 30_000, checkpoint: 30_000 };

type History = temporal.api.history.v1.IHistory;

/** The build ids of the workers that completed the workflow's tasks, in order, and its history. */
async function tasksBy(
  client: Client,
  wf: WorkflowExecutionInfo,
): Promise<{ ids: string[]; history: History }> {
  const history = await client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
  const ids = (history.events ?? []).flatMap((e) => {
    const id = e.workflowTaskCompletedEventAttributes?.deploymentVersion?.buildId;
    return id ? [id] : [];
  });
  return { ids, history };
}

async function list(client: Client, query: string): Promise<WorkflowExecutionInfo[]> {
  const all: WorkflowExecutionInfo[] = [];
  for await (const wf of client.workflow.list({ query })) all.push(wf);
  return all;
}

describe('upgrading the server workers while a rollout runs (docs/operations/upgrades.md)', () => {
  let bundleN: { code: string };
  let bundleN1: { code: string };
  before(async () => {
    bundleN = await workflowBundle();
    bundleN1 = await bundleWorkflowCode({ workflowsPath: nextWorkflows, logger: new DefaultLogger('WARN') });
  });

  test('N+1 takes over: in-flight hosts finish on N, the rest run on N+1, none cycled twice', async (t) => {
    const env = await startVaquero(t, { fixture, sites: ['sim1'], simTimeScale: 0.1, serverWorker: false });
    if (!env) return;
    const start = await serverWorkers(t, env);
    // Version N serves the deployment; N+1 is deployed beside it and registers, but is not current.
    const n = await start(N, bundleN);
    assert.equal((await registerVersion(env.client, N, { makeCurrent: true })).current?.buildId, N.buildId);
    await start(N1, bundleN1);
    const next = await registerVersion(env.client, N1, { makeCurrent: false });
    assert.equal(next.promoted, false, 'a second version does not take over by itself while N runs');
    assert.match(
      next.reason,
      /temporal worker deployment set-current-version .*--build-id 'upgrade-test-n1'/,
    );
    const described = await env.cli('worker', 'deployment', 'describe', '--name', SERVER_DEPLOYMENT);
    for (const v of [N, N1])
      assert.match(described, new RegExp(`\\b${v.buildId}\\b`), `upgrades.md step 1 lists ${v.buildId}`);
    // The agents report their build id per poller (upgrades.md, "The agents").
    const agentQueue = await env.cli('task-queue', 'describe', '--task-queue', 'vaquero-agent-sim1');
    assert.ok(agentQueue.includes(`vaquero-agent:${defaultBuildId()}/`), agentQueue);

    const sha = await env.commit('first deployment');
    const rollout = await startRollout(env, sha);
    await until(env, rollout, (c) => c.succeeded >= 1 && c.running >= 1 && c.pending >= 1);
    // The upgrade: the documented command, run as an operator would.
    await env.cli(
      'worker',
      'deployment',
      'set-current-version',
      '--deployment-name',
      SERVER_DEPLOYMENT,
      '--build-id',
      N1.buildId,
      '--yes',
    );
    const switchedAt = Date.now();
    // N stays up until no workflow is pinned to it: the drain query of upgrades.md.
    const drain = `TemporalWorkerDeploymentVersion='${SERVER_DEPLOYMENT}:${N.buildId}' AND ExecutionStatus='Running' AND TemporalWorkflowVersioningBehavior='Pinned'`;
    for (let i = 0; (await env.cli('workflow', 'count', '--query', drain)).trim() !== 'Total: 0'; i++) {
      assert.ok(i < 600, 'the hosts pinned to N finish');
      await delay(100);
    }
    n.worker.shutdown();
    await n.done;

    // A host moved to N+1 would fail its workflow tasks there and keep the rollout open: say so.
    const result = (await Promise.race([
      env.client.workflow.getHandle(rollout).result(),
      delay(180_000).then(() => assert.fail('the rollout did not complete within 180 s of the switch')),
    ])) as SiteRolloutResult;
    assert.equal(result.phase, 'completed', JSON.stringify(result));
    assert.equal(result.failed.length, 0);
    const cycles = await env.cycles();
    assert.equal(cycles.size, 20);
    assert.ok(
      [...cycles.values()].every((c) => c === 1),
      `one power cycle per host: ${JSON.stringify([...cycles])}`,
    );

    // The namespace keeps closed workflows of earlier runs: this commit's hosts only.
    const hosts = (await list(env.client, `WorkflowId STARTS_WITH 'host/sim1/'`)).filter(
      (h) => h.workflowId.split('/')[3] === sha.slice(0, 7),
    );
    assert.equal(hosts.length, 20);
    const onN: History[] = [];
    let inFlightAtSwitch = 0;
    for (const host of hosts) {
      const { ids, history } = await tasksBy(env.client, host);
      assert.equal(new Set(ids).size, 1, `${host.workflowId} ran on one version: ${ids.join(' ')}`);
      const firstCommand = history.events?.[4];
      if (ids[0] === N.buildId) {
        onN.push(history);
        assert.ok(!firstCommand?.timerStartedEventAttributes, "N's host code: no timer first");
        if ((host.closeTime?.getTime() ?? 0) > switchedAt) inFlightAtSwitch++;
      } else {
        assert.equal(ids[0], N1.buildId);
        assert.ok(firstCommand?.timerStartedEventAttributes, "N+1's host code: its timer first");
      }
    }
    assert.ok(onN.length >= 1 && onN.length < 20, `hosts on both versions (${onN.length} on N)`);
    assert.ok(inFlightAtSwitch >= 1, 'a host in flight at the switch finished on N after it');
    t.diagnostic(
      `${onN.length} hosts on N (${inFlightAtSwitch} finished after the switch), ${20 - onN.length} on N+1`,
    );

    const [run] = await list(env.client, `WorkflowId = '${rollout}'`);
    assert.ok(run);
    const { ids, history } = await tasksBy(env.client, run);
    assert.equal(ids[0], N.buildId, 'the rollout started on N');
    assert.equal(ids.at(-1), N1.buildId, 'and moved to N+1 (auto-upgrade)');
    // Pinning is what made the host change safe: N's host histories do not replay on N+1's code,
    // while the rollout, which moved, replays on both.
    const [hostOnN] = onN;
    assert.ok(hostOnN);
    await Worker.runReplayHistory({ workflowBundle: bundleN }, hostOnN);
    await assert.rejects(
      Worker.runReplayHistory({ workflowBundle: bundleN1 }, hostOnN),
      DeterminismViolationError,
    );
    await Worker.runReplayHistory({ workflowBundle: bundleN }, history);
    await Worker.runReplayHistory({ workflowBundle: bundleN1 }, history);
  });
  test('one server: N stopped mid-rollout, N+1 made current, update-options moves the hosts N pinned', async (t) => {
    const env = await startVaquero(t, { fixture, sites: ['sim1'], simTimeScale: 0.1, serverWorker: false });
    if (!env) return;
    const start = await serverWorkers(t, env);
    const solo = { deploymentName: SERVER_DEPLOYMENT, buildId: 'upgrade-test-solo-n' };
    const soloNext = { deploymentName: SERVER_DEPLOYMENT, buildId: 'upgrade-test-solo-n1' };
    const n = await start(solo, bundleN);
    await registerVersion(env.client, solo, { makeCurrent: true });
    // Control hosts boot in 10 s (100 s scaled by 0.1): cp-02 is still booting when N is gone. The
    // other groups start after control, on N+1, and keep their 3 s boots.
    const control = path.join(env.sot, 'sites/sim1/hosts/control.yaml');
    await writeFile(
      control,
      (await readFile(control, 'utf8')).replaceAll('boot_delay: 30s', 'boot_delay: 100s'),
    );
    const sha = await env.commit('first deployment, slow boots');
    const rollout = await startRollout(env, sha, SLOW);
    // N goes away while a host it ran is booting (pinned to N: its first task was N's).
    const pinned = `TemporalWorkerDeploymentVersion='${SERVER_DEPLOYMENT}:${solo.buildId}' AND ExecutionStatus='Running' AND WorkflowId STARTS_WITH 'host/sim1/cp-02/'`;
    for (let i = 0; (await env.cli('workflow', 'count', '--query', pinned)).trim() !== 'Total: 1'; i++) {
      assert.ok(i < 600, 'cp-02 (after the canary) runs on N');
      await delay(100);
    }
    n.worker.shutdown();
    await n.done;
    // The next release (here the same workflow code: its host workflow replays N's histories).
    await start(soloNext, bundleN);
    const made = await registerVersion(env.client, soloNext, { makeCurrent: true });
    assert.equal(made.reason, 'made current (--make-current)');
    await env.cli(
      'workflow',
      'update-options',
      '--query',
      `TemporalWorkerDeploymentVersion='${SERVER_DEPLOYMENT}:${solo.buildId}' AND ExecutionStatus='Running'`,
      '--versioning-override-behavior',
      'auto_upgrade',
      '--yes',
    );
    const result = (await Promise.race([
      env.client.workflow.getHandle(rollout).result(),
      delay(180_000).then(() => assert.fail('the rollout did not complete within 180 s of the restart')),
    ])) as SiteRolloutResult;
    assert.equal(result.phase, 'completed', JSON.stringify(result));
    const cycles = await env.cycles();
    assert.equal(cycles.size, 20);
    assert.ok(
      [...cycles.values()].every((c) => c === 1),
      `one power cycle per host: ${JSON.stringify([...cycles])}`,
    );
    const hosts = (await list(env.client, `WorkflowId STARTS_WITH 'host/sim1/'`)).filter(
      (h) => h.workflowId.split('/')[3] === sha.slice(0, 7),
    );
    let moved = 0;
    for (const host of hosts) {
      const run: { ids: string[] } = await tasksBy(env.client, host);
      const builds = new Set(run.ids);
      if (builds.size === 2) moved++;
      if (host.workflowId.startsWith('host/sim1/cp-02/'))
        assert.deepEqual(
          [...builds],
          [solo.buildId, soloNext.buildId],
          'cp-02 began on N and finished on N+1',
        );
    }
    t.diagnostic(`${moved} hosts moved from the stopped N to N+1`);
  });
});

/** Starts server workers of given versions for this test; they stop when it ends. */
async function serverWorkers(t: TestContext, env: VaqueroEnv) {
  const native = await NativeConnection.connect({ address: temporalAddress() });
  const workers: { worker: Worker; done: Promise<void> }[] = [];
  t.after(async () => {
    for (const w of workers) if (w.worker.getState() === 'RUNNING') w.worker.shutdown();
    await Promise.allSettled(workers.map((w) => w.done));
    await native.close();
  });
  const store = new FileModelStore(path.join(env.stateDir, 'server-store'));
  return async (deployment: DeploymentVersion, code: { code: string }) => {
    const worker = await createServerWorker({
      connection: native,
      namespace: env.namespace,
      client: env.client,
      store,
      workflows: { workflowBundle: code },
      deployment,
    });
    const w = { worker, done: worker.run() };
    workers.push(w);
    return w;
  };
}

async function startRollout(env: VaqueroEnv, commit: string, timeouts = TIMEOUTS): Promise<string> {
  const apply = await env.client.workflow.start('applyCommitWorkflow', {
    taskQueue: SERVER_TASK_QUEUE,
    workflowId: applyWorkflowId(commit),
    args: [{ commit, source: env.sot, timeouts }],
  });
  const { rollouts } = (await apply.result()) as { rollouts: { workflowId: string }[] };
  const id = rollouts[0]?.workflowId;
  assert.ok(id, 'the commit started a rollout');
  return id;
}

type Counts = { pending: number; running: number; succeeded: number };
async function until(env: VaqueroEnv, id: string, ok: (c: Counts) => boolean): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const { counts } = await env.client.workflow.getHandle(id).query(statusQuery);
    if (ok(counts)) return;
    await delay(100);
  }
  throw new Error(`rollout ${id}: hosts never both done, in flight and pending`);
}
