import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import type { ApplyCommitResult } from '../../workflows/apply-commit';
import {
  applyWorkflowId,
  SERVER_TASK_QUEUE,
  type RolloutStatus,
  type SiteRolloutResult,
} from '../../schemas/rollout';
import { statusQuery } from '../../workflows/messages';
import { startVaquero, type VaqueroEnv } from '../helpers/vaquero-env';

const fixture = fileURLToPath(new URL('../fixtures/sot-sim', import.meta.url));
const FAST = { dhcp: 5_000, ipxe: 5_000, kernel: 5_000, checkpoint: 5_000 };

async function apply(env: VaqueroEnv, commit: string): Promise<ApplyCommitResult> {
  const handle = await env.client.workflow.start('applyCommitWorkflow', {
    taskQueue: SERVER_TASK_QUEUE,
    workflowId: applyWorkflowId(commit),
    args: [{ commit, source: env.sot, timeouts: FAST }],
  });
  return (await handle.result()) as ApplyCommitResult;
}

async function status(env: VaqueroEnv, workflowId: string): Promise<RolloutStatus> {
  return env.client.workflow.getHandle(workflowId).query(statusQuery);
}

async function waitFor(env: VaqueroEnv, workflowId: string, ok: (s: RolloutStatus) => boolean, what: string) {
  for (let i = 0; i < 300; i++) {
    const s = await status(env, workflowId);
    if (ok(s)) return s;
    await delay(100);
  }
  throw new Error(`rollout ${workflowId} never reached: ${what}`);
}

async function edit(file: string, from: string | RegExp, to: string): Promise<void> {
  const text = await readFile(file, 'utf8');
  const next = text.replace(from, to);
  assert.notEqual(next, text, `edit of ${file} changed nothing`);
  await writeFile(file, next);
}

describe('site rollout on a real Temporal server with sim BMCs', () => {
  test('a 20-host first deployment completes in the plan order, each host cycled once', async (t) => {
    const env = await startVaquero(t, { fixture, sites: ['sim1'], simTimeScale: 0.005 });
    if (!env) return;
    const sha = await env.commit('first');
    const applied = await apply(env, sha);
    assert.equal(applied.rollouts.length, 1);
    const rollout = applied.rollouts[0];
    assert.equal(rollout?.workflowId, `rollout/sim1/${sha.slice(0, 7)}`);
    const result = (await env.client.workflow.getHandle(rollout.workflowId).result()) as SiteRolloutResult;
    assert.equal(result.phase, 'completed');
    assert.equal(result.succeeded!.length, 20);
    const cycles = await env.cycles();
    assert.equal(cycles.size, 20);
    assert.ok(
      [...cycles.values()].every((n) => n === 1),
      'every host power-cycled exactly once',
    );
    const final = await status(env, rollout.workflowId);
    assert.equal(final.waves, 7);
    // The sim BMCs log cycles in the order they happened: waves never go backwards.
    const order = (await readFile(path.join(env.stateDir, 'agent-sim1/sim-cycles.log'), 'utf8'))
      .split('\n')
      .filter(Boolean);
    const waveOf = order.map((key) => final.hosts[key.split('/')[1] ?? '']?.wave ?? 0);
    assert.deepEqual(
      waveOf,
      [...waveOf].sort((x, y) => x - y),
      `cycle order ${order.join(' ')}`,
    );
    assert.equal(order[0], 'sim1/cp-01', 'the canary goes first');
    assert.deepEqual(
      order.slice(1, 3),
      ['sim1/cp-02', 'sim1/cp-03'],
      'the control plane before its dependents',
    );
    assert.deepEqual(final.counts, { total: 20, pending: 0, running: 0, succeeded: 20, failed: 0 });
  });

  test('a canary failure halts the rollout; abort from `temporal workflow signal` ends it', async (t) => {
    const env = await startVaquero(t, { fixture, sites: ['sim1'], simTimeScale: 0.005 });
    if (!env) return;
    const sha = await env.commit('first');
    env.fault('sim1/cp-01', 'checkpoint');
    const { rollouts } = await apply(env, sha);
    const id = rollouts[0]?.workflowId ?? '';
    const halted = await waitFor(env, id, (s) => s.phase === 'halted', 'halted');
    assert.match(halted.waitingFor ?? '', /canary failed/);
    assert.equal(halted.hosts['cp-01']?.state, 'failed');
    assert.match(halted.hosts['cp-01']?.error ?? '', /no checkpoint event from 52:54:00:99:00:0b within 5 s/);
    assert.deepEqual(halted.hosts['cp-01']?.failedAt, { stage: 1, step: 'checkpoint' });
    assert.deepEqual(halted.counts, { total: 20, pending: 19, running: 0, succeeded: 0, failed: 1 });
    await delay(500);
    assert.deepEqual(
      [...(await env.cycles()).keys()],
      ['sim1/cp-01'],
      'no host after the canary was touched',
    );

    await env.cli(
      'workflow',
      'signal',
      '--workflow-id',
      id,
      '--name',
      'abort',
      '--input',
      '"stop: bad image"',
    );
    const result = (await env.client.workflow.getHandle(id).result()) as SiteRolloutResult;
    assert.equal(result.phase, 'aborted');
    assert.deepEqual(result.failed, ['cp-01']);
    assert.equal(result.remaining!.length, 19);
  });

  test('retry-host from the CLI resumes a failed canary, and the rollout goes on', async (t) => {
    const env = await startVaquero(t, { fixture, sites: ['sim1'], simTimeScale: 0.005 });
    if (!env) return;
    const sha = await env.commit('first');
    env.fault('sim1/cp-01', 'dhcp');
    const { rollouts } = await apply(env, sha);
    const id = rollouts[0]?.workflowId ?? '';
    await waitFor(env, id, (s) => s.phase === 'halted', 'halted');
    env.fault('sim1/cp-01', undefined);
    await env.cli('workflow', 'signal', '--workflow-id', id, '--name', 'retry-host', '--input', '"cp-01"');
    const result = (await env.client.workflow.getHandle(id).result()) as SiteRolloutResult;
    assert.equal(result.phase, 'completed');
    assert.equal(result.succeeded!.length, 20);
    const cycles = await env.cycles();
    assert.equal(cycles.get('sim1/cp-01'), 2, 'the retry power-cycles the canary once more');
    assert.ok([...cycles].every(([host, n]) => host === 'sim1/cp-01' || n === 1));
    const retried = await env.client.workflow
      .getHandle(`host/sim1/cp-01/${sha.slice(0, 7)}/retry-1`)
      .describe();
    assert.equal(retried.status.name, 'COMPLETED');
  });

  test('approval after the canary, pause and resume, all from `temporal workflow signal`', async (t) => {
    const env = await startVaquero(t, { fixture, sites: ['sim1'], simTimeScale: 0.005 });
    if (!env) return;
    await edit(
      path.join(env.sot, 'sites/sim1/site.yaml'),
      'approval_required: false',
      'approval_required: true',
    );
    const sha = await env.commit('first');
    const { rollouts } = await apply(env, sha);
    const id = rollouts[0]?.workflowId ?? '';
    const waiting = await waitFor(env, id, (s) => s.phase === 'waiting-approval', 'waiting for approval');
    assert.match(waiting.waitingFor ?? '', /approve signal/);
    assert.equal(waiting.counts.succeeded, 1);

    await env.cli('workflow', 'signal', '--workflow-id', id, '--name', 'pause');
    await env.cli('workflow', 'signal', '--workflow-id', id, '--name', 'approve');
    await waitFor(env, id, (s) => s.phase === 'paused', 'paused');
    await delay(1000);
    assert.equal((await env.cycles()).size, 1, 'paused: nothing after the canary started');

    const described = await env.cli(
      'workflow',
      'query',
      '--workflow-id',
      id,
      '--type',
      'status',
      '--output',
      'json',
    );
    assert.match(described, /"phase": ?"paused"/);
    await env.cli('workflow', 'signal', '--workflow-id', id, '--name', 'resume');
    const result = (await env.client.workflow.getHandle(id).result()) as SiteRolloutResult;
    assert.equal(result.phase, 'completed');
    assert.equal((await env.cycles()).size, 20);
  });

  test('a newer commit supersedes a running rollout: in-flight hosts finish, no host is cycled twice', async (t) => {
    const env = await startVaquero(t, { fixture, sites: ['sim1'], simTimeScale: 0.03 });
    if (!env) return;
    const first = await env.commit('first');
    const a = (await apply(env, first)).rollouts[0]?.workflowId ?? '';
    await waitFor(env, a, (s) => s.wave >= 2, 'wave 2 of the first rollout');
    await edit(path.join(env.sot, 'workflows/edge.yaml'), 'boots: [sim-node]', 'boots: [sim-edge]');
    const second = await env.commit('second: edge hosts boot their own profile');
    const b = await apply(env, second);
    assert.equal(b.rollouts[0]?.supersedes, a);

    const resultA = (await env.client.workflow.getHandle(a).result()) as SiteRolloutResult;
    assert.equal(resultA.phase, 'superseded');
    assert.ok(resultA.remaining!.length > 0 && resultA.succeeded!.length > 0);
    const resultB = (await env.client.workflow
      .getHandle(b.rollouts[0]?.workflowId ?? '')
      .result()) as SiteRolloutResult;
    assert.equal(resultB.phase, 'completed');
    assert.deepEqual(
      [...resultA.succeeded!, ...resultB.succeeded!].sort(),
      [...resultA.succeeded!, ...resultA.remaining!].sort(),
    );
    const cycles = await env.cycles();
    assert.equal(cycles.size, 20);
    for (const [host, n] of cycles) assert.equal(n, 1, `${host} was power-cycled ${n} times`);
    const statusB = await status(env, b.rollouts[0]?.workflowId ?? '');
    const carried = Object.values(statusB.hosts).filter((h) => h.state === 'succeeded').length;
    assert.equal(carried, resultA.remaining!.length);
  });
});
