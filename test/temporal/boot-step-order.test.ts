// Issue 18 item 4: boot events in an order no booting host takes (the script before DHCP: what
// someone else on the boot network can cause with token-less requests) do not complete a host's
// reprovision; the same events in a possible order afterwards do. Events that need the arming's token
// (kernel, initrd, checkpoint) stand for the steps before them since issue 13 (a dead agent's unsent
// events: test/temporal/boot-steps-implied.test.ts), so this sends none out of order. A real host
// workflow on Temporal, armed and power-cycled by a real agent worker whose sim machine stays silent
// (fault at dhcp), so every boot event is one the test delivers as the agent's sink would: a
// boot-event signal.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { FileModelStore } from '../../activities/store/file-store';
import {
  hostWorkflowId,
  SERVER_TASK_QUEUE,
  type BootEvent,
  type ReprovisionHostResult,
} from '../../schemas/rollout';
import { validateSot } from '../../sot/validate';
import { bootEventSignal, hostStatusQuery } from '../../workflows/messages';
import { startVaquero } from '../helpers/vaquero-env';

const fixture = fileURLToPath(new URL('../fixtures/sot-sim', import.meta.url));
const HOST = 'edge-01';
const MAC = '52:54:00:99:00:1d';
const COMMIT = 'b00710c0de';

test('boot steps out of order complete nothing; in order they complete the host', async (t) => {
  const env = await startVaquero(t, { fixture, sites: ['sim1'], simTimeScale: 0.005 });
  if (!env) return;
  const { model } = await validateSot(env.sot);
  assert.ok(model);
  await new FileModelStore(path.join(env.stateDir, 'store')).putRevision(COMMIT, model);
  env.fault(`sim1/${HOST}`, 'dhcp');

  const handle = await env.client.workflow.start('reprovisionHostWorkflow', {
    taskQueue: SERVER_TASK_QUEUE,
    workflowId: hostWorkflowId('sim1', HOST, COMMIT),
    args: [
      {
        site: 'sim1',
        host: HOST,
        commit: COMMIT,
        timeouts: { dhcp: 60_000, ipxe: 60_000, kernel: 60_000, checkpoint: 60_000 },
      },
    ],
  });
  const status = () => handle.query(hostStatusQuery);
  for (let i = 0; (await status()).step !== 'dhcp'; i++) {
    assert.ok(i < 200, `the host never got to wait for DHCP: ${(await status()).step}`);
    await delay(50);
  }

  const send = async (kind: BootEvent['kind']) => {
    await handle.signal(bootEventSignal, { kind, mac: MAC, stage: 1, at: new Date().toISOString() });
    await delay(20); // one millisecond apart at least, as a host's own steps are
  };
  for (const kind of ['ipxe', 'tftp', 'dhcp'] as const) await send(kind);
  await delay(1500);
  const waiting = await status();
  assert.equal(waiting.events.length, 3, 'every event reached the workflow');
  // DHCP counts (anyone can send one); the script fetched before it does not.
  assert.equal(waiting.step, 'ipxe', `out of order the host got to ${waiting.step}`);
  assert.equal((await handle.describe()).status.name, 'RUNNING');

  for (const kind of ['ipxe', 'kernel', 'checkpoint'] as const) await send(kind);
  const result = (await handle.result()) as ReprovisionHostResult;
  assert.equal(result.ok, true);
});
