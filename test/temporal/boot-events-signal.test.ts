// The host workflow's `boot-events` batches (issue 12 item 4), as a real host workflow on Temporal
// armed and power-cycled by a real agent worker whose sim machine stays silent (fault at dhcp): every
// boot event is one the test sends. A malformed batch is dropped, never a failed workflow task; one
// batch completes several steps; a step whose event does not come fails at its own timeout after
// the previous step, with the message of old, under the one watchdog timer.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { WorkflowHandle } from '@temporalio/client';
import { FileModelStore } from '../../activities/store/file-store';
import {
  hostWorkflowId,
  SERVER_TASK_QUEUE,
  type BootEvent,
  type BootEventBatch,
  type ReprovisionHostResult,
  type StepTimeouts,
} from '../../schemas/rollout';
import { validateSot } from '../../sot/validate';
import { bootEventsSignal, hostStatusQuery } from '../../workflows/messages';
import { startVaquero } from '../helpers/vaquero-env';

const fixture = fileURLToPath(new URL('../fixtures/sot-sim', import.meta.url));
const HOST = 'edge-01';
const MAC = '52:54:00:99:00:1d';

async function waitingForDhcp(t: TestContext, commit: string, timeouts: StepTimeouts) {
  const env = await startVaquero(t, { fixture, sites: ['sim1'], simTimeScale: 0.005 });
  if (!env) return undefined;
  const { model } = await validateSot(env.sot);
  assert.ok(model);
  await new FileModelStore(path.join(env.stateDir, 'store')).putRevision(commit, model);
  env.fault(`sim1/${HOST}`, 'dhcp');
  const handle = await env.client.workflow.start('reprovisionHostWorkflow', {
    taskQueue: SERVER_TASK_QUEUE,
    workflowId: hostWorkflowId('sim1', HOST, commit),
    args: [{ site: 'sim1', host: HOST, commit, timeouts }],
  });
  for (let i = 0; (await handle.query(hostStatusQuery)).step !== 'dhcp'; i++) {
    assert.ok(i < 200, 'the host never got to wait for DHCP');
    await delay(50);
  }
  return handle;
}

const event = (kind: BootEvent['kind'], ms: number): BootEvent => ({
  kind,
  mac: MAC,
  stage: 1,
  at: new Date(Date.now() + ms).toISOString(),
});

async function eventTypes(handle: WorkflowHandle): Promise<string[]> {
  return ((await handle.fetchHistory()).events ?? []).map(
    (e) => Object.keys(e).find((k) => k.endsWith('EventAttributes')) ?? '',
  );
}

test('a malformed batch is dropped; one batch completes every boot step', async (t) => {
  const timeouts = { dhcp: 60_000, ipxe: 60_000, kernel: 60_000, checkpoint: 60_000 };
  const handle = await waitingForDhcp(t, 'ba7c4ed0001', timeouts);
  if (!handle) return;
  for (const bad of [{ events: 'dhcp' }, { events: [] }, { events: [{ kind: 'dhcp', mac: MAC }] }])
    await handle.signal(bootEventsSignal, bad as unknown as BootEventBatch);
  await delay(500);
  assert.equal((await handle.describe()).status.name, 'RUNNING');
  assert.equal((await handle.query(hostStatusQuery)).step, 'dhcp', 'nothing counted');

  const batch = { events: [event('dhcp', 0), event('ipxe', 1), event('kernel', 2), event('checkpoint', 3)] };
  await handle.signal(bootEventsSignal, batch);
  const result = (await handle.result()) as ReprovisionHostResult;
  assert.equal(result.ok, true);
  const types = await eventTypes(handle);
  assert.ok(!types.includes('workflowTaskFailedEventAttributes'), 'no workflow task failed');
  // No agent said it disarmed the host: the workflow did.
  const activities = ((await handle.fetchHistory()).events ?? []).flatMap(
    (e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? [],
  );
  assert.ok(activities.includes('disarmNetboot'), activities.join(', '));
});

test('a step that does not come fails at its own timeout after the previous one', async (t) => {
  const timeouts = { dhcp: 60_000, ipxe: 2_000, kernel: 60_000, checkpoint: 60_000 };
  const handle = await waitingForDhcp(t, 'ba7c4ed0002', timeouts);
  if (!handle) return;
  const sent = Date.now();
  await handle.signal(bootEventsSignal, { events: [event('dhcp', 0)] });
  await assert.rejects(handle.result(), (err: Error) => {
    const cause = (err.cause as Error | undefined)?.message ?? '';
    assert.match(cause, new RegExp(`stage 1 ipxe: no ipxe event from ${MAC} within 2 s`));
    return true;
  });
  const took = Date.now() - sent;
  assert.ok(took >= 2_000 && took < 15_000, `failed after ${took} ms`);
  // The DHCP deadline's timer gave way to the earlier iPXE one: two timers, not one per step.
  const timers = (await eventTypes(handle)).filter((k) => k === 'timerStartedEventAttributes');
  assert.equal(timers.length, 2);
});
