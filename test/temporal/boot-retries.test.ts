// Issue 14 item 3: a host that misses a boot step's timeout is power-cycled again, up to its group's
// boot_retries, each attempt in its history with the step it missed and one cycle per attempt (the
// power claim's key names the attempt); only the last attempt's miss fails the step. A real host
// workflow on Temporal, armed and cycled by a real agent worker over its sim BMC, whose machine
// stays silent at the step the test injects (the first boot's DHCP lost, or every boot's).
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { FileModelStore } from '../../activities/store/file-store';
import {
  applyWorkflowId,
  hostWorkflowId,
  SERVER_TASK_QUEUE,
  type ReprovisionHostResult,
  type SiteRolloutResult,
} from '../../schemas/rollout';
import { validateSot } from '../../sot/validate';
import type { ApplyCommitResult } from '../../workflows/apply-commit';
import { startVaquero, type VaqueroEnv } from '../helpers/vaquero-env';

const fixture = fileURLToPath(new URL('../fixtures/sot-sim', import.meta.url));
const HOST = 'edge-01';
const SIM_HOST = `sim1/${HOST}`;
// Short enough for a test, longer than a sim boot at this time scale (150 ms).
const timeouts = { dhcp: 1_500, ipxe: 1_500, kernel: 1_500, checkpoint: 1_500 };

type Fault = 'dhcp' | 'checkpoint';

/** The edge group with `retries` (the fixture's says 0), stored as a model revision. */
async function startHost(
  t: TestContext,
  retries: number | undefined,
  type: 'reprovisionHostWorkflow' | 'reprovisionHostWorkflowV2',
  commit: string,
): Promise<{ env: VaqueroEnv; handle: WorkflowHandle } | undefined> {
  const env = await startVaquero(t, { fixture, sites: ['sim1'], simTimeScale: 0.005 });
  if (!env) return undefined;
  const line = retries === undefined ? '' : `boot_retries: ${retries}\n`;
  await writeFile(
    path.join(env.sot, 'workflows/edge.yaml'),
    `id: edge\nboots: [sim-node]\n${line}rollout: { max_concurrent: 1, max_fail: 0 }\n`,
  );
  const { model, diagnostics } = await validateSot(env.sot);
  assert.ok(model, JSON.stringify(diagnostics));
  await new FileModelStore(path.join(env.stateDir, 'store')).putRevision(commit, model);
  return { env, handle: await startWorkflow(env, type, commit) };
}

function startWorkflow(env: VaqueroEnv, type: string, commit: string): Promise<WorkflowHandle> {
  return env.client.workflow.start(type, {
    taskQueue: SERVER_TASK_QUEUE,
    workflowId: hostWorkflowId('sim1', HOST, commit),
    args: [{ site: 'sim1', host: HOST, commit, timeouts }],
  });
}

async function cyclesOf(env: VaqueroEnv): Promise<number> {
  return (await env.cycles()).get(SIM_HOST) ?? 0;
}

/** The arm-and-power-cycle activities of the history: their claim key and summary. */
async function powerClaims(handle: WorkflowHandle): Promise<{ key: string; summary: string }[]> {
  const decode = (data: Uint8Array | null | undefined) =>
    JSON.parse(Buffer.from(data ?? new Uint8Array()).toString('utf8')) as unknown;
  return ((await handle.fetchHistory()).events ?? []).flatMap((e) => {
    const a = e.activityTaskScheduledEventAttributes;
    if (a?.activityType?.name !== 'armAndPowerCycle') return [];
    const input = decode(a.input?.payloads?.[0]?.data) as { key: string };
    return [{ key: input.key, summary: String(decode(e.userMetadata?.summary?.data)) }];
  });
}

/** Patch markers (a local activity's marker is one too, of another name). */
async function markers(handle: WorkflowHandle): Promise<number> {
  const events = (await handle.fetchHistory()).events ?? [];
  return events.filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_patch').length;
}

async function failure(handle: WorkflowHandle): Promise<{ message: string; result: ReprovisionHostResult }> {
  const err = await handle.result().then(
    () => assert.fail('the host should have failed'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof WorkflowFailedError);
  const cause = err.cause as { message: string; details?: unknown[] };
  return { message: cause.message, result: cause.details?.[0] as ReprovisionHostResult };
}

/** Drops the host's first boot at `fault`: the fault is cleared once the first cycle happened. */
async function dropFirstBoot(env: VaqueroEnv, fault: Fault): Promise<void> {
  env.fault(SIM_HOST, fault);
  for (let i = 0; (await cyclesOf(env)) < 1; i++) {
    assert.ok(i < 300, 'the host was never power-cycled');
    await delay(20);
  }
  // The sim machine took its fault when it was cycled: clearing it now changes the next boot only.
  env.fault(SIM_HOST, undefined);
}

test('a lost first DHCP is retried with a second power cycle, and the host completes', async (t) => {
  const started = await startHost(t, 2, 'reprovisionHostWorkflowV2', 'b0071e7a0001');
  if (!started) return;
  const { env, handle } = started;
  await dropFirstBoot(env, 'dhcp');
  const result = (await handle.result()) as ReprovisionHostResult;
  assert.equal(result.ok, true);
  assert.deepEqual(
    result.bootRetries?.map(({ stage, attempt, missed }) => ({ stage, attempt, missed })),
    [{ stage: 1, attempt: 1, missed: 'dhcp' }],
  );
  assert.match(result.bootRetries?.[0]?.error ?? '', /no dhcp event from 52:54:00:99:00:1d/);
  assert.equal(await cyclesOf(env), 2, 'one power cycle per attempt');
  const claims = await powerClaims(handle);
  assert.equal(claims.length, 2);
  assert.match(claims[0]?.key ?? '', /\/stage-1$/, 'the first attempt keeps the key runs always had');
  assert.match(claims[1]?.key ?? '', /\/stage-1\/boot-2$/, 'the retry claims a cycle of its own');
  assert.match(claims[1]?.summary ?? '', /^boot attempt 2 of 3 \(attempt 1 missed dhcp\): arm edge-01/);
  assert.equal(await markers(handle), 1, 'V2 records the boot-retries patch at the miss');
});

test('boot_retries 0: the host fails at dhcp at once, after one power cycle', async (t) => {
  const started = await startHost(t, 0, 'reprovisionHostWorkflowV2', 'b0071e7a0002');
  if (!started) return;
  const { env, handle } = started;
  env.fault(SIM_HOST, 'dhcp');
  const { message, result } = await failure(handle);
  assert.match(message, /^edge-01: stage 1 dhcp: no dhcp event from 52:54:00:99:00:1d within 2 s$/);
  assert.deepEqual(result.failedAt, { stage: 1, step: 'dhcp' });
  assert.equal(result.bootRetries, undefined);
  assert.equal(await cyclesOf(env), 1);
  assert.equal(await markers(handle), 0, 'no retry, no patch marker');
});

test('retries exhausted: the step fails naming it and the attempts (reprovisionHostWorkflow)', async (t) => {
  const started = await startHost(t, 1, 'reprovisionHostWorkflow', 'b0071e7a0003');
  if (!started) return;
  const { env, handle } = started;
  env.fault(SIM_HOST, 'checkpoint');
  const { message, result } = await failure(handle);
  assert.match(message, /^edge-01: stage 1 checkpoint: no checkpoint event .* \(boot attempt 2 of 2\)$/);
  assert.deepEqual(result.failedAt, { stage: 1, step: 'checkpoint' });
  assert.deepEqual(
    result.bootRetries?.map((r) => `${r.attempt}:${r.missed}`),
    ['1:checkpoint'],
  );
  assert.equal(await cyclesOf(env), 2, 'one power cycle per attempt, no more');
  assert.deepEqual(
    (await powerClaims(handle)).map((c) => c.key.replace(/^.*\/stage-/, 'stage-')),
    ['stage-1', 'stage-1/boot-2'],
  );
});

test('the default is two retries: a silent machine is cycled three times before it fails', async (t) => {
  const started = await startHost(t, undefined, 'reprovisionHostWorkflowV2', 'b0071e7a0004');
  if (!started) return;
  const { env, handle } = started;
  env.fault(SIM_HOST, 'dhcp');
  const { message, result } = await failure(handle);
  assert.match(message, /stage 1 dhcp: .* \(boot attempt 3 of 3\)$/);
  assert.deepEqual(
    result.bootRetries?.map((r) => r.attempt),
    [1, 2],
  );
  assert.equal(await cyclesOf(env), 3);
});

test('in a rollout, a canary whose first DHCP is lost costs no failure: the rollout completes', async (t) => {
  const env = await startVaquero(t, { fixture, sites: ['sim1'], simTimeScale: 0.005 });
  if (!env) return;
  // The control group (max_fail 0, the canary's) gets one retry; a failed canary would halt.
  const file = path.join(env.sot, 'workflows/control.yaml');
  await writeFile(file, (await readFile(file, 'utf8')).replace('boot_retries: 0', 'boot_retries: 1'));
  const sha = await env.commit('control: one boot retry');
  env.fault('sim1/cp-01', 'dhcp');
  const apply = await env.client.workflow.start('applyCommitWorkflow', {
    taskQueue: SERVER_TASK_QUEUE,
    workflowId: applyWorkflowId(sha),
    args: [{ commit: sha, source: env.sot, timeouts }],
  });
  const { rollouts } = (await apply.result()) as ApplyCommitResult;
  for (let i = 0; !(await env.cycles()).get('sim1/cp-01'); i++) {
    assert.ok(i < 600, 'the canary was never power-cycled');
    await delay(20);
  }
  env.fault('sim1/cp-01', undefined);
  const rollout = env.client.workflow.getHandle(rollouts[0]?.workflowId ?? '');
  const result = (await rollout.result()) as SiteRolloutResult;
  assert.equal(result.phase, 'completed');
  assert.deepEqual(result.failed, []);
  const cycles = await env.cycles();
  assert.equal(cycles.get('sim1/cp-01'), 2, 'the canary: one cycle per boot attempt');
  assert.ok(
    [...cycles].every(([host, n]) => host === 'sim1/cp-01' || n === 1),
    'the others: one each',
  );
  const canary = (await env.client.workflow
    .getHandle(hostWorkflowId('sim1', 'cp-01', sha))
    .result()) as ReprovisionHostResult;
  assert.deepEqual(
    canary.bootRetries?.map((r) => `${r.attempt}:${r.missed}`),
    ['1:dhcp'],
  );
});
