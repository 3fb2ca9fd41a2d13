// Issue 13, boot-URL failover: agent A hands a host its script and dies (kill -9) before it sends
// the batch with the host's DHCP and script events; the host takes its kernel, initrd and checkpoint
// from agent B. B's events carry the arming's token, so they stand for the steps whose events went
// down with A: the host completes, with a patch marker only in such a run. A real host workflow
// (reprovisionHostWorkflowV2, the type rollouts start) on Temporal, armed and power-cycled by a real
// agent worker whose sim machine stays silent (fault at dhcp): every boot event is one the test sends.
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
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
import { IMPLIED_BOOT_STEPS } from '../../workflows/boot-steps';
import { bootEventsSignal, hostStatusQuery } from '../../workflows/messages';
import { historyToJSON } from '../helpers/history-json';
import { startVaquero } from '../helpers/vaquero-env';

const fixture = fileURLToPath(new URL('../fixtures/sot-sim', import.meta.url));
const HOST = 'edge-01';
const MAC = '52:54:00:99:00:1d';
const COMMIT = 'b00713fa11';

const event = (kind: BootEvent['kind'], ms: number): BootEvent => ({
  kind,
  mac: MAC,
  stage: 1,
  at: new Date(Date.now() + ms).toISOString(),
});

test("the surviving agent's kernel, initrd and checkpoint complete a host whose script came from a dead agent", async (t) => {
  const env = await startVaquero(t, { fixture, sites: ['sim1'], simTimeScale: 0.005 });
  if (!env) return;
  const { model } = await validateSot(env.sot);
  assert.ok(model);
  await new FileModelStore(path.join(env.stateDir, 'store')).putRevision(COMMIT, model);
  env.fault(`sim1/${HOST}`, 'dhcp');
  const handle = await env.client.workflow.start('reprovisionHostWorkflowV2', {
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
  // Token-less events alone stand for nothing: a spoofed TFTP request does not get past DHCP.
  await handle.signal(bootEventsSignal, { events: [event('tftp', 0)] });
  await delay(1000);
  assert.equal((await status()).step, 'dhcp');

  // What agent B saw: the kernel and initrd (one batch), then the checkpoint.
  await handle.signal(bootEventsSignal, { events: [event('kernel', 10), event('initrd', 20)] });
  await delay(1000);
  assert.equal((await status()).step, 'checkpoint', 'the kernel stood for DHCP and the script');
  await handle.signal(bootEventsSignal, { events: [event('checkpoint', 30)] });
  const result = (await handle.result()) as ReprovisionHostResult;
  assert.equal(result.ok, true, JSON.stringify(result));
  const history = (await handle.fetchHistory()).events ?? [];
  const patches = history.flatMap((e) =>
    (e.markerRecordedEventAttributes?.details?.['patch-data']?.payloads ?? []).map(
      (p) => (JSON.parse(Buffer.from(p.data ?? []).toString()) as { id?: string }).id,
    ),
  );
  assert.deepEqual(patches, [IMPLIED_BOOT_STEPS], 'the run that took an implied step says so');
  // `VAQUERO_RECORD_REPLAY=1` keeps this history for test/replay (scenario host-boot-steps-implied).
  if (process.env.VAQUERO_RECORD_REPLAY) {
    const dir = fileURLToPath(new URL('../replay/histories/host-boot-steps-implied', import.meta.url));
    await mkdir(dir, { recursive: true });
    const file = `${hostWorkflowId('sim1', HOST, COMMIT).replaceAll('/', '__')}.json`;
    await writeFile(path.join(dir, file), `${historyToJSON(await handle.fetchHistory())}\n`);
  }
  const steps = await handle.query(hostStatusQuery).catch(() => undefined);
  if (steps)
    assert.deepEqual(
      steps.events.map((e) => e.kind),
      ['tftp', 'kernel', 'initrd', 'checkpoint'],
    );
});
