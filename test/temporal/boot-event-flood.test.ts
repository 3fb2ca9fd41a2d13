// A flood of spoofed boot packets from an armed host's MAC (anyone on the boot network can send
// them) must not become one signal each: the host workflow's history would reach Temporal's
// 51,200-event limit and the workflow would be terminated.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { SignalingEventSink } from '../../agent/state/event-delivery';
import { NetbootTable } from '../../agent/state/netboot-table';
import type { BootEvent } from '../../schemas/rollout';
import { connectOrSkip } from '../helpers/temporal';

const MAC = '52:54:00:aa:0f:01';
const quiet = { info: () => undefined, warn: () => undefined };

test('2,000 repeated DHCP events of an armed MAC are one signal; each other kind still arrives', async (t) => {
  const connection = await connectOrSkip(t);
  if (!connection) return;
  const client = new Client({ connection, namespace: 'default' });
  const work = await mkdtemp(path.join(tmpdir(), 'vq-event-flood-'));
  t.after(() => rm(work, { recursive: true, force: true }));
  // A workflow nobody runs: its history still records every signal it is sent.
  const workflowId = `vq-event-flood-${Date.now()}`;
  const handle = await client.workflow.start('waitsForBootEvents', {
    taskQueue: `vq-event-flood-nobody-${Date.now()}`,
    workflowId,
    workflowExecutionTimeout: '5 minutes',
  });
  t.after(() => handle.terminate('test over').catch(() => undefined));
  const netboot = new NetbootTable(path.join(work, 'netboot.json'));
  await netboot.arm({
    mac: MAC,
    site: 'sim1',
    host: 'h1',
    commit: 'c1',
    stage: 1,
    workflowId,
    armedAt: new Date().toISOString(),
    token: 'boot-event-flood-test-token',
  });
  const sink = new SignalingEventSink({
    client,
    netboot,
    logger: quiet,
    journal: path.join(work, 'events.jsonl'),
  });
  const at = () => new Date().toISOString();
  for (let i = 0; i < 2_000; i++) sink.emit({ kind: 'dhcp', mac: MAC, at: at(), detail: `DISCOVER ${i}` });
  for (const kind of ['tftp', 'ipxe', 'kernel'] as const) sink.emit({ kind, mac: MAC, at: at() });
  // A deploy's progress reports repeat one another (the first of 30 s passes); its result is no repeat.
  for (const bytes of [1, 2, 3])
    sink.emit({ kind: 'image', mac: MAC, at: at(), detail: `written ${bytes} bytes` });
  sink.emit({ kind: 'image', mac: MAC, at: at(), detail: 'verified sha256:00 (3 bytes)' });
  sink.emit({ kind: 'checkpoint', mac: MAC, at: at() });
  await sink.drain();

  const history = await handle.fetchHistory();
  const signals = (history.events ?? [])
    .map((e) => e.workflowExecutionSignaledEventAttributes)
    .filter((a) => a?.signalName === 'boot-event')
    .map((a) => defaultPayloadConverter.fromPayload<BootEvent>(a!.input!.payloads![0]!));
  assert.deepEqual(
    signals.map((s) => [s.kind, s.detail]),
    [
      ['dhcp', 'DISCOVER 0'],
      ['tftp', undefined],
      ['ipxe', undefined],
      ['kernel', undefined],
      ['image', 'written 1 bytes'],
      ['image', 'verified sha256:00 (3 bytes)'],
      ['checkpoint', undefined],
    ],
  );
  assert.equal(sink.repeatsDropped, 2_001);
  await sink.close();
});
