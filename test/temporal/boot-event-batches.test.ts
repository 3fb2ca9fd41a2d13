// Boot events in batches (issue 12 item 4, issue 13 item 3): two agents that both see a host's boot
// send the same batches, which the server records once; a batch left owed in the journal by a crash
// is re-sent unchanged after the restart and recorded once; a crash between the batch and the
// agent's own disarm finishes both after the restart. On the real Temporal server: a workflow that no
// worker runs still records every signal in its history, which is what counts here.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { Client, type WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { SignalingEventSink } from '../../agent/state/event-delivery';
import { NetbootTable } from '../../agent/state/netboot-table';
import type { ArmEntry } from '../../schemas/agent';
import type { BootEvent, BootEventBatch } from '../../schemas/rollout';
import { ensureNamespace } from '../../server/temporal-setup';
import { connectOrSkip } from '../helpers/temporal';

const MAC = '52:54:00:bb:00:01';
const NAMESPACE = process.env.VAQUERO_TEST_NAMESPACE ?? 'vaquero-test';
const quiet = { info: () => undefined, warn: () => undefined };

const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();
const boot = (kind: BootEvent['kind'], s: number): BootEvent => ({
  kind,
  mac: MAC,
  at: at(s),
  detail: `e${s}`,
});

interface Setup {
  client: Client;
  handle: WorkflowHandle;
  work: string;
  arm: ArmEntry;
  /** A sink of its own (an agent) with its netboot table and journal, the host armed in it. */
  agent(name: string, journal?: string): Promise<{ sink: SignalingEventSink; netboot: NetbootTable }>;
  batches(): Promise<BootEventBatch[]>;
}

async function setup(t: TestContext): Promise<Setup | undefined> {
  const connection = await connectOrSkip(t);
  if (!connection) return undefined;
  await ensureNamespace(connection, NAMESPACE, 1);
  const client = new Client({ connection, namespace: NAMESPACE });
  const work = await mkdtemp(path.join(tmpdir(), 'vq-batches-'));
  t.after(() => rm(work, { recursive: true, force: true }));
  const workflowId = `vq-batches-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
  const handle = await client.workflow.start('waitsForBootEvents', {
    taskQueue: `vq-batches-nobody-${workflowId}`,
    workflowId,
    workflowExecutionTimeout: '10 minutes',
  });
  t.after(() => handle.terminate('test over').catch(() => undefined));
  const arm: ArmEntry = {
    mac: MAC,
    site: 'sim1',
    host: 'h1',
    commit: 'c1',
    stage: 1,
    workflowId,
    armedAt: new Date().toISOString(),
    token: 'boot-event-batches-test-token',
    batches: true,
    disarmAtCheckpoint: true,
  };
  const agent = async (name: string, journal?: string) => {
    const netboot = new NetbootTable(path.join(work, `${name}-netboot.json`));
    await netboot.arm(arm);
    const sink = new SignalingEventSink({
      client,
      netboot,
      logger: quiet,
      journal: journal ?? path.join(work, `${name}-events.jsonl`),
      batchWindowMs: 300,
      retryMs: 100,
    });
    return { sink, netboot };
  };
  const batches = async () =>
    ((await handle.fetchHistory()).events ?? []).flatMap((e) => {
      const a = e.workflowExecutionSignaledEventAttributes;
      if (!a) return [];
      assert.equal(a.signalName, 'boot-events', 'an arming with batches gets no single boot-event');
      return [defaultPayloadConverter.fromPayload<BootEventBatch>(a.input!.payloads![0]!)];
    });
  return { client, handle, work, arm, agent, batches };
}

test('two agents see the same boot: one signal per batch, each step once', async (t) => {
  const s = await setup(t);
  if (!s) return;
  const a = await s.agent('a');
  const b = await s.agent('b');
  const both = (e: BootEvent) => [a, b].forEach((x) => x.sink.emit(e));
  // DHCP, the iPXE script and the kernel within a second: one batch when the window ends.
  both(boot('dhcp', 1));
  both(boot('ipxe', 2));
  both(boot('kernel', 3));
  await Promise.all([a.sink.drain(), b.sink.drain()]);
  // A repeat within the repeat window adds nothing; the checkpoint goes at once.
  both(boot('dhcp', 4));
  both(boot('checkpoint', 5));
  await Promise.all([a.sink.drain(), b.sink.drain()]);

  const batches = await s.batches();
  assert.equal(batches.length, 2, JSON.stringify(batches));
  assert.deepEqual(
    batches.map((x) => x.events.map((e) => [e.kind, e.at, e.stage])),
    [
      [
        ['dhcp', at(1), 1],
        ['ipxe', at(2), 1],
        ['kernel', at(3), 1],
      ],
      [['checkpoint', at(5), 1]],
    ],
  );
  // The last stage's checkpoint: each agent disarmed the host itself and said so, in the same words.
  assert.deepEqual(batches[1]?.disarmed, { stage: 1, at: at(5) });
  assert.equal(batches[0]?.disarmed, undefined);
  assert.equal(await a.netboot.lookup(MAC), undefined);
  assert.equal(await b.netboot.lookup(MAC), undefined);
  assert.equal(await readFile(path.join(s.work, 'a-events.jsonl'), 'utf8'), '', 'nothing owed');
});

test('a batch owed in the journal after a crash is sent again unchanged and recorded once', async (t) => {
  const s = await setup(t);
  if (!s) return;
  const events = [boot('dhcp', 1), boot('ipxe', 2), boot('kernel', 3), boot('checkpoint', 4)];
  const first = await s.agent('first');
  for (const e of events) first.sink.emit(e);
  await first.sink.drain();
  assert.equal((await s.batches()).length, 1);

  // The journal of an agent killed after the server recorded its batch and before the acknowledgement:
  // the events, the batch as formed, its outcome (disarmed) and no ack.
  const journal = path.join(s.work, 'crashed-events.jsonl');
  const seqs = events.map((_, i) => i + 1);
  const lines = [
    ...events.map((event, i) => ({ seq: i + 1, id: `lost-${i}`, event })),
    { batch: seqs, workflowId: s.arm.workflowId, stage: 1, disarm: { stage: 1, at: at(4) } },
    { batch: seqs, workflowId: s.arm.workflowId, stage: 1, disarmed: { stage: 1, at: at(4) }, final: true },
  ];
  await writeFile(journal, lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
  const restarted = await s.agent('restarted', journal);
  // Disarmed before the crash: the re-sent batch still goes to its workflow.
  await restarted.netboot.disarm(MAC);
  await restarted.sink.drain();
  assert.equal((await s.batches()).length, 1, 'the re-sent batch is recorded once');
  assert.equal(await readFile(journal, 'utf8'), '', 'delivered: nothing owed any more');
});

test('killed between forming a last batch and disarming: after the restart, disarmed and sent once', async (t) => {
  const s = await setup(t);
  if (!s) return;
  const events = [boot('kernel', 3), boot('checkpoint', 4)];
  const journal = path.join(s.work, 'crashed-events.jsonl');
  const lines = [
    ...events.map((event, i) => ({ seq: i + 7, id: `lost-${i}`, event })),
    { batch: [7, 8], workflowId: s.arm.workflowId, stage: 1, disarm: { stage: 1, at: at(4) } },
    // An event emitted after the batch and never delivered: it goes too, after the batch.
    { seq: 9, id: 'lost-9', event: boot('unattended', 5) },
    { ack: 6 },
  ];
  await writeFile(journal, lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
  const restarted = await s.agent('restarted', journal);
  await restarted.sink.drain();
  assert.equal(await restarted.netboot.lookup(MAC), undefined, 'the disarm it meant to do is done');
  const batches = await s.batches();
  assert.deepEqual(
    batches.map((x) => [x.events.map((e) => e.kind), x.disarmed]),
    [
      [['kernel', 'checkpoint'], { stage: 1, at: at(4) }],
      // Still armed when the restarted agent read it back: its own batch, after the owed one.
      [['unattended'], undefined],
    ],
  );
  // A second restart with the same journal lines (as if the acks were lost too) adds nothing.
  await writeFile(
    journal,
    lines
      .slice(0, 3)
      .map((l) => `${JSON.stringify(l)}\n`)
      .join(''),
  );
  await (await s.agent('again', journal)).sink.drain();
  assert.equal((await s.batches()).length, 2);
});
