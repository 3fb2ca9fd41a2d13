// Issue 14 item 1: a stage whose profile writes a disk image waits for the deploy ramdisk's result
// between the kernel and the checkpoint. A checksum mismatch fails the host at that step with the
// agent's message and no retry; a verified image goes on to the checkpoint. A real host workflow on
// Temporal, armed and power-cycled by a real agent worker whose sim machine stays silent (fault at
// dhcp), so every boot event is one the test delivers as the agent's sink would.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { FileModelStore } from '../../activities/store/file-store';
import {
  hostWorkflowId,
  SERVER_TASK_QUEUE,
  type BootEvent,
  type ReprovisionHostResult,
} from '../../schemas/rollout';
import type { Model } from '../../schemas/model';
import { validateSot } from '../../sot/validate';
import { bootEventSignal, hostStatusQuery } from '../../workflows/messages';
import { startVaquero } from '../helpers/vaquero-env';

const fixture = fileURLToPath(new URL('../fixtures/sot-sim', import.meta.url));
const HOST = 'edge-01';
const MAC = '52:54:00:99:00:1d';
const SUM = `sha256:${'c3'.repeat(32)}`;
const WRONG = `sha256:${'d4'.repeat(32)}`;

function withImage(model: Model): Model {
  const copy = structuredClone(model);
  for (const [id, profile] of Object.entries(copy.profiles))
    copy.profiles[id] = {
      ...profile,
      image: { url: '/files/os.img', format: 'raw', checksum: SUM, disk: '/dev/vda' },
    };
  return copy;
}

/** Polls the host's status until it waits at `step` (a loaded machine may take a while). */
async function stepIs(handle: WorkflowHandle, step: string): Promise<void> {
  for (let i = 0; (await handle.query(hostStatusQuery)).step !== step; i++) {
    assert.ok(i < 400, `the host never got to ${step}`);
    await delay(50);
  }
}

test('a checksum mismatch fails the image step; a verified image goes on', async (t) => {
  const env = await startVaquero(t, { fixture, sites: ['sim1'], simTimeScale: 0.005 });
  if (!env) return;
  const { model } = await validateSot(env.sot);
  assert.ok(model);
  const store = new FileModelStore(path.join(env.stateDir, 'store'));
  env.fault(`sim1/${HOST}`, 'dhcp');
  const timeouts = { dhcp: 60_000, ipxe: 60_000, kernel: 60_000, checkpoint: 60_000 };

  const boot = async (commit: string, result: string) => {
    await store.putRevision(commit, withImage(model));
    const handle = await env.client.workflow.start('reprovisionHostWorkflowV2', {
      taskQueue: SERVER_TASK_QUEUE,
      workflowId: hostWorkflowId('sim1', HOST, commit),
      args: [{ site: 'sim1', host: HOST, commit, timeouts }],
    });
    for (let i = 0; (await handle.query(hostStatusQuery)).step !== 'dhcp'; i++) {
      assert.ok(i < 400, 'the host never got to wait for DHCP');
      await delay(50);
    }
    const send = async (kind: BootEvent['kind'], detail?: string) => {
      const event = { kind, mac: MAC, stage: 1, at: new Date().toISOString(), ...(detail ? { detail } : {}) };
      await handle.signal(bootEventSignal, event);
      await delay(20);
    };
    for (const kind of ['dhcp', 'ipxe', 'kernel'] as const) await send(kind);
    await send('image', 'written 1048576 bytes');
    // Progress is no result: the host waits at the image step (were it taken for one, the host
    // would fail with "written …", which the assertions below refuse).
    await stepIs(handle, 'image');
    await send('image', result);
    return handle;
  };

  const bad = await boot('badc0ffee1', `checksum mismatch: expected ${SUM}, got ${WRONG} (2097152 bytes)`);
  const err = await bad.result().then(
    () => assert.fail('a mismatch completed the host'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof WorkflowFailedError);
  assert.equal(
    err.cause?.message,
    `${HOST}: stage 1 image: checksum mismatch: expected ${SUM}, got ${WRONG} (2097152 bytes)`,
  );

  const good = await boot('900dc0ffee', `verified ${SUM} (2097152 bytes)`);
  await stepIs(good, 'checkpoint');
  await good.signal(bootEventSignal, {
    kind: 'checkpoint',
    mac: MAC,
    stage: 1,
    at: new Date().toISOString(),
  });
  assert.equal(((await good.result()) as ReprovisionHostResult).ok, true);
});
