// A rollout never closes while one of its hosts is in flight, and a host workflow whose rollout is
// gone is cancelled (so it disarms), not terminated: issue 12's two correctness bugs, on the dev
// server with sim BMCs.
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import type { WorkflowExecutionDescription } from '@temporalio/client';
import type { ArmEntry } from '../../schemas/agent';
import {
  applyWorkflowId,
  hostWorkflowId,
  rolloutWorkflowId,
  SERVER_TASK_QUEUE,
  type RolloutStatus,
  type SiteRolloutResult,
  type StepTimeouts,
} from '../../schemas/rollout';
import { statusQuery } from '../../workflows/messages';
import { sweepOrphanHosts } from '../../server/rollouts/orphan-sweep';
import { startVaquero, type VaqueroEnv } from '../helpers/vaquero-env';

const fixture = fileURLToPath(new URL('../fixtures/sot-sim', import.meta.url));
const SCALE = 0.005;

async function apply(env: VaqueroEnv, commit: string, timeouts: StepTimeouts): Promise<string> {
  const handle = await env.client.workflow.start('applyCommitWorkflow', {
    taskQueue: SERVER_TASK_QUEUE,
    workflowId: applyWorkflowId(commit),
    args: [{ commit, source: env.sot, timeouts }],
  });
  await handle.result();
  return rolloutWorkflowId('sim1', commit);
}

async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 300; i++) {
    const value = await probe();
    if (value !== undefined) return value;
    await delay(50);
  }
  throw new Error(`never happened: ${what}`);
}

const rolloutStatus = (env: VaqueroEnv, id: string): Promise<RolloutStatus> =>
  env.client.workflow.getHandle(id).query(statusQuery);

async function armed(env: VaqueroEnv): Promise<ArmEntry[]> {
  const file = path.join(env.stateDir, 'agent-sim1/netboot.json');
  const text = await readFile(file, 'utf8').catch(() => '[]');
  return JSON.parse(text) as ArmEntry[];
}

/** Four workers, two at a time, canary first: waves [wk-01] [wk-02 wk-03] [wk-04]; `slow` boots slowly. */
async function fourHostSite(env: VaqueroEnv, slow: number): Promise<void> {
  for (const file of ['workflows/control.yaml', 'workflows/edge.yaml', 'sites/sim1/hosts/control.yaml'])
    await rm(path.join(env.sot, file));
  await rm(path.join(env.sot, 'sites/sim1/hosts/edge.yaml'));
  await writeFile(
    path.join(env.sot, 'workflows/workers.yaml'),
    'id: workers\nboots: [sim-node]\nrollout: { max_concurrent: 2, max_fail: 1 }\n',
  );
  const hosts = [1, 2, 3, 4].map(
    (n) =>
      `name: wk-0${n}\ngroup: workers\ninterfaces:\n  - mac: "52:54:00:99:00:${(0x0d + n).toString(16).padStart(2, '0')}"\n` +
      `    subnet: sim1-prov\n    ipv4: 10.99.0.${13 + n}\nbmc: { type: sim, boot_delay: ${n === slow ? 600 : 30}s }\n`,
  );
  await writeFile(path.join(env.sot, 'sites/sim1/hosts/workers.yaml'), hosts.join('---\n'));
}

/** The most host workflows that ran at one time, from their start and close times. */
function mostAtOnce(runs: WorkflowExecutionDescription[]): number {
  const edges = runs.flatMap((r) => [
    { at: r.startTime.getTime(), d: 1 },
    { at: r.closeTime?.getTime() ?? Infinity, d: -1 },
  ]);
  edges.sort((a, b) => a.at - b.at || a.d - b.d);
  let now = 0;
  let most = 0;
  for (const e of edges) most = Math.max(most, (now += e.d));
  return most;
}

describe('hosts in flight: retries, slots, and when a rollout closes', () => {
  test('no wave barrier: a slow host does not hold back the next wave, within max_concurrent', async (t) => {
    const env = await startVaquero(t, { fixture, sites: ['sim1'], simTimeScale: SCALE });
    if (!env) return;
    await fourHostSite(env, 2);
    const sha = await env.commit('four workers, wk-02 slow');
    const id = await apply(env, sha, { dhcp: 5_000, ipxe: 5_000, kernel: 5_000, checkpoint: 10_000 });
    const result = (await env.client.workflow.getHandle(id).result()) as SiteRolloutResult;
    assert.equal(result.phase, 'completed');
    assert.deepEqual(result.succeeded, ['wk-01', 'wk-02', 'wk-03', 'wk-04'], JSON.stringify(result));
    const runs = await Promise.all(
      ['wk-01', 'wk-02', 'wk-03', 'wk-04'].map((h) =>
        env.client.workflow.getHandle(hostWorkflowId('sim1', h, sha)).describe(),
      ),
    );
    const [canary, slow, fast, next] = runs;
    assert.ok(canary && slow && fast && next);
    assert.ok((canary.closeTime?.getTime() ?? Infinity) <= slow.startTime.getTime(), 'the canary first');
    assert.ok(
      next.startTime.getTime() < (slow.closeTime?.getTime() ?? 0),
      "wk-04 took wk-03's slot while wk-02 was still booting",
    );
    assert.ok(
      next.startTime.getTime() >= (fast.closeTime?.getTime() ?? Infinity),
      'only once a slot was free',
    );
    assert.ok(mostAtOnce(runs) <= 2, 'never more hosts at once than max_concurrent 2');
  });

  test('retries of two failed hosts run side by side, and the rollout waits for the slow one', async (t) => {
    const env = await startVaquero(t, { fixture, sites: ['sim1'], simTimeScale: SCALE });
    if (!env) return;
    await fourHostSite(env, 3);
    const sha = await env.commit('four workers');
    env.fault('sim1/wk-02', 'dhcp');
    env.fault('sim1/wk-03', 'dhcp');
    const id = await apply(env, sha, { dhcp: 1_500, ipxe: 5_000, kernel: 5_000, checkpoint: 10_000 });
    const halted = await until('halted in wave 2', async () => {
      const s = await rolloutStatus(env, id);
      return s.phase === 'halted' ? s : undefined;
    });
    // wk-04 may have taken the slot of whichever failed first: one failure is within max_fail.
    assert.equal(halted.counts.failed, 2);
    assert.equal(halted.hosts['wk-02']?.state, 'failed');
    assert.equal(halted.hosts['wk-03']?.state, 'failed');

    env.fault('sim1/wk-02', undefined);
    env.fault('sim1/wk-03', undefined);
    const handle = env.client.workflow.getHandle(id);
    await env.cli('workflow', 'signal', '--workflow-id', id, '--name', 'retry-host', '--input', '"wk-02"');
    await env.cli('workflow', 'signal', '--workflow-id', id, '--name', 'retry-host', '--input', '"wk-03"');
    const result = (await handle.result()) as SiteRolloutResult;
    assert.equal(result.phase, 'completed');
    assert.deepEqual(result.succeeded, ['wk-01', 'wk-02', 'wk-03', 'wk-04'], JSON.stringify(result));
    assert.deepEqual(result.failed, []);

    const describe = (host: string, attempt = 1) =>
      env.client.workflow.getHandle(hostWorkflowId('sim1', host, sha, attempt)).describe();
    const retry2 = await describe('wk-02', 2);
    const retry3 = await describe('wk-03', 2);
    assert.equal(retry3.status.name, 'COMPLETED', 'the slow retry was not cut short');
    assert.equal(retry2.status.name, 'COMPLETED');
    const closed = (await handle.describe()).closeTime?.getTime() ?? 0;
    assert.ok(closed >= (retry3.closeTime?.getTime() ?? Infinity), 'the rollout closed after the retry');
    assert.ok(
      retry3.startTime.getTime() < (retry2.closeTime?.getTime() ?? 0),
      'the two retries ran side by side',
    );
    const firsts = await Promise.all(['wk-01', 'wk-02', 'wk-03', 'wk-04'].map((h) => describe(h)));
    const runs = [...firsts, retry2, retry3];
    assert.ok(mostAtOnce(runs) <= 2, 'never more hosts at once than max_concurrent 2');
    assert.deepEqual(await armed(env), [], 'no host left armed');
  });

  test('a rollout terminated mid-boot cancels its host workflow, which disarms the host', async (t) => {
    // The worker's own sweep waits an hour: the sweep of rollouts closed since is called here.
    const env = await startVaquero(t, {
      fixture,
      sites: ['sim1'],
      simTimeScale: 0.2,
      orphanSweepMs: 3_600_000,
    });
    if (!env) return;
    const sha = await env.commit('first');
    const id = await apply(env, sha, { dhcp: 20_000, ipxe: 20_000, kernel: 20_000, checkpoint: 20_000 });
    await until('the canary armed', async () =>
      (await armed(env)).some((e) => e.host === 'cp-01') ? true : undefined,
    );
    const since = new Date().toISOString();
    assert.deepEqual(
      await sweepOrphanHosts(env.client),
      [],
      'a full sweep leaves a running rollout its hosts',
    );
    await env.cli('workflow', 'terminate', '--workflow-id', id, '--reason', 'operator: wrong commit');
    const host = env.client.workflow.getHandle(hostWorkflowId('sim1', 'cp-01', sha));
    const cancelled = await until('the sweep of closed rollouts found the host', async () => {
      const ids = await sweepOrphanHosts(env.client, undefined, since);
      return ids.length > 0 ? ids : undefined;
    });
    assert.deepEqual(cancelled, [host.workflowId]);
    const closed = await until('the host workflow closed', async () => {
      const d = await host.describe();
      return d.status.name === 'RUNNING' ? undefined : d;
    });
    assert.equal(closed.status.name, 'CANCELLED');
    assert.deepEqual(await armed(env), [], 'the host was disarmed');
  });
});
