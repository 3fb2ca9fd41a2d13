// Issue 15, items 3 and 4: the operator's commands are Workflow Updates. Each is refused in the wrong
// state with a reason a person reads, accepted in the right one with the rollout's new state; the
// same through `temporal workflow update execute`, `vaquero rollout` (exit codes) and /api/v1 (409).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { main } from '../../cli/main';
import type { Io } from '../../cli/io';
import {
  applyWorkflowId,
  SERVER_TASK_QUEUE,
  type RolloutOutcome,
  type RolloutStatus,
  type SiteRolloutResult,
} from '../../schemas/rollout';
import type { ApplyCommitResult } from '../../workflows/apply-commit';
import {
  approveUpdate,
  pauseUpdate,
  resumeUpdate,
  retryHostUpdate,
  statusQuery,
} from '../../workflows/messages';
import { API_TOKEN, testApp } from '../helpers/server-http';
import { temporalAddress } from '../helpers/temporal';
import { startVaquero, temporalCli, type VaqueroEnv } from '../helpers/vaquero-env';

const fixture = fileURLToPath(new URL('../fixtures/sot-sim', import.meta.url));
const FAST = { dhcp: 5_000, ipxe: 5_000, kernel: 5_000, checkpoint: 5_000 };
const run = promisify(execFile);

async function vaquero(env: VaqueroEnv, ...args: string[]) {
  let out = '';
  let err = '';
  const io: Io = { out: (text) => void (out += text), err: (text) => void (err += text), cwd: () => '/' };
  const argv = ['rollout', ...args, '--address', temporalAddress(), '--namespace', env.namespace];
  const code = await main(argv, io, {});
  return { code, out, err };
}

async function startRollout(env: VaqueroEnv): Promise<string> {
  const sha = await env.commit(`rollout updates ${randomUUID()}`);
  const applied = (await env.client.workflow.execute('applyCommitWorkflow', {
    taskQueue: SERVER_TASK_QUEUE,
    workflowId: applyWorkflowId(sha),
    args: [{ commit: sha, source: env.sot, timeouts: FAST }],
  })) as ApplyCommitResult;
  const id = applied.rollouts[0]?.workflowId;
  assert.ok(id, 'the commit starts a rollout');
  return id;
}

async function waitForPhase(env: VaqueroEnv, id: string, phase: RolloutStatus['phase']): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if ((await env.client.workflow.getHandle(id).query(statusQuery)).phase === phase) return;
    await delay(100);
  }
  throw new Error(`${id} never reached ${phase}`);
}

/** The Update's refusal as the client sees it: the validator's reason. */
async function refusal(update: Promise<unknown>): Promise<string> {
  const err = await update.then(
    () => assert.fail('the update was accepted'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof WorkflowUpdateFailedError, String(err));
  return err.cause?.message ?? '';
}

/** `temporal workflow update execute` as an operator types it: the result as JSON, or the refusal. */
async function updateByCli(env: VaqueroEnv, id: string, name: string, input?: string) {
  const args = ['workflow', 'update', 'execute', '--workflow-id', id, '--name', name, '-o', 'json'];
  try {
    return { ok: true, out: await env.cli(...args, ...(input ? ['--input', input] : [])) };
  } catch (err) {
    return { ok: false, out: (err as { stderr?: string }).stderr ?? String(err) };
  }
}

async function approvalRequired(env: VaqueroEnv): Promise<void> {
  const file = path.join(env.sot, 'sites/sim1/site.yaml');
  const text = await readFile(file, 'utf8');
  await writeFile(file, text.replace('approval_required: false', 'approval_required: true'));
}

describe('rollout commands as Workflow Updates on a real Temporal server', () => {
  test('approve, pause and resume: refused in the wrong state, accepted in the right one', async (t) => {
    const env = await startVaquero(t, { fixture, sites: ['sim1'], simTimeScale: 0.005 });
    if (!env) return;
    await approvalRequired(env);
    const id = await startRollout(env);
    const handle = env.client.workflow.getHandle(id);
    await waitForPhase(env, id, 'waiting-approval');

    assert.equal(
      await refusal(handle.executeUpdate(resumeUpdate)),
      'the rollout is not paused, it is waiting-approval (waiting for: approve signal (site policy: approval required after the canary))',
    );
    assert.equal(
      await refusal(handle.executeUpdate(retryHostUpdate, { args: ['wk-01'] })),
      'host wk-01 is pending, not failed: retry-host retries failed hosts only',
    );
    assert.equal(
      await refusal(handle.executeUpdate(retryHostUpdate, { args: ['nope'] })),
      'host nope is not in this rollout',
    );

    const paused = await updateByCli(env, id, 'pause');
    assert.ok(paused.ok, paused.out);
    const pausedState = (JSON.parse(paused.out) as { result: RolloutOutcome }).result;
    assert.equal(pausedState.phase, 'waiting-approval', 'still waiting for approval, and paused too');
    assert.deepEqual(pausedState.counts, { total: 20, pending: 19, running: 0, succeeded: 1, failed: 0 });
    assert.equal((pausedState as { hosts?: unknown }).hosts, undefined, 'counts, not every host');
    const again = await updateByCli(env, id, 'pause');
    assert.ok(!again.ok);
    assert.match(again.out, /the rollout is already paused/);

    const approved = await updateByCli(env, id, 'approve');
    assert.ok(approved.ok, approved.out);
    assert.equal((JSON.parse(approved.out) as { result: RolloutOutcome }).result.phase, 'paused');
    assert.equal(await refusal(handle.executeUpdate(approveUpdate)), 'the rollout is already approved');
    await delay(300);
    assert.equal((await handle.query(statusQuery)).counts.succeeded, 1, 'paused: nothing started');

    const resumed = await handle.executeUpdate(resumeUpdate);
    assert.equal(resumed.phase, 'running');
    const result = (await handle.result()) as SiteRolloutResult;
    assert.equal(result.phase, 'completed');
    assert.equal(await refusal(handle.executeUpdate(pauseUpdate)).catch(() => 'closed'), 'closed');
    const late = await vaquero(env, 'approve', id);
    assert.equal(late.code, 1);
    assert.equal(
      late.err,
      `vaquero rollout: ${id} is closed (completed): a closed rollout takes no approve\n`,
    );
  });

  test('a halted canary: the CLI and the API say why approve and retry-host are refused, then retry it', async (t) => {
    const env = await startVaquero(t, { fixture, sites: ['sim1'], simTimeScale: 0.005 });
    if (!env) return;
    env.fault('sim1/cp-01', 'checkpoint');
    const id = await startRollout(env);
    await waitForPhase(env, id, 'halted');

    const approve = await vaquero(env, 'approve', id);
    assert.equal(approve.code, 1);
    assert.equal(
      approve.err,
      `vaquero rollout: ${id} refused approve: the site does not require approval (approval_required: false): there is nothing to approve\n`,
    );
    const byCli = await updateByCli(env, id, 'retry-host', '"wk-01"');
    assert.ok(!byCli.ok);
    assert.match(byCli.out, /host wk-01 is pending, not failed: retry-host retries failed hosts only/);
    const wrongHost = await vaquero(env, 'retry-host', id, 'wk-01');
    assert.equal(wrongHost.code, 1);
    assert.match(wrongHost.err, /refused retry-host: host wk-01 is pending, not failed/);

    const { app } = testApp(env.client, env.repo);
    const base = `/api/v1/rollouts/sim1/${id.split('/')[2]}`;
    const post = (name: string, body: unknown) =>
      app.request(`${base}/${name}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${API_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const refused = await post('retry-host', { host: 'wk-02' });
    assert.equal(refused.status, 409);
    assert.match(
      ((await refused.json()) as { error: string }).error,
      /refused retry-host: host wk-02 is pending, not failed: retry-host retries failed hosts only/,
    );
    const resume = await post('resume', {});
    assert.equal(resume.status, 409);
    assert.match(((await resume.json()) as { error: string }).error, /not paused, it is halted/);

    env.fault('sim1/cp-01', undefined);
    const retried = await post('retry-host', { host: 'cp-01' });
    assert.equal(retried.status, 200);
    const body = (await retried.json()) as { status: string; rollout: RolloutOutcome };
    assert.equal(body.status, 'done');
    assert.equal(body.rollout.counts.failed, 1, 'the new state: cp-01 waits for its retry');
    const twice = await vaquero(env, 'retry-host', id, 'cp-01');
    assert.equal(twice.code, 1, twice.out);

    const aborted = await vaquero(env, 'abort', id, '--reason', 'enough');
    assert.equal(aborted.code, 0, aborted.err);
    assert.match(aborted.out, new RegExp(`^${id}: abort done; now aborted`));
    const result = (await env.client.workflow.getHandle(id).result()) as SiteRolloutResult;
    assert.equal(result.phase, 'aborted');
  });

  test('a rollout that completed with a failure inside its budget: retry-host says what to do, and that works', async (t) => {
    const env = await startVaquero(t, { fixture, sites: ['sim1'], simTimeScale: 0.005 });
    if (!env) return;
    env.fault('sim1/wk-05', 'dhcp');
    const id = await startRollout(env);
    const result = (await env.client.workflow.getHandle(id).result()) as SiteRolloutResult;
    assert.deepEqual([result.phase, result.failed], ['completed', ['wk-05']]);

    const late = await vaquero(env, 'retry-host', id, 'wk-05');
    assert.equal(late.code, 1);
    assert.equal(late.err.trimEnd().split('\n').length, 1, late.err);
    assert.match(late.err, /completed with wk-05 failed inside its failure budget and is closed/);
    const command = /: (temporal workflow start .*)$/.exec(late.err.trimEnd())?.[1];
    assert.ok(command, late.err);
    const other = await vaquero(env, 'retry-host', id, 'wk-06');
    assert.match(other.err, /is closed \(completed\): a closed rollout takes no retry-host/);

    env.fault('sim1/wk-05', undefined);
    const cli = temporalCli();
    await run('sh', ['-c', `${command.replace(/^temporal /, `${cli} `)} --address ${temporalAddress()}`]);
    const workflowId = /--workflow-id (\S+)/.exec(command)?.[1] ?? '';
    assert.match(workflowId, /^host\/sim1\/wk-05\/[0-9a-f]{7}\/retry-1$/);
    const host = (await env.client.workflow.getHandle(workflowId).result()) as { skipped?: boolean };
    assert.ok(!host.skipped, 'reprovisioned');
  });
});
