// Boot events buffered on the agent's disk across a Temporal outage and an agent crash: a Temporal
// dev server of this test's own (SQLite, so history survives its restart) is stopped, an agent
// process emits events into the void and is killed, the server comes back, a new agent delivers them:
// in order, exactly once.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { NetbootTable } from '../../agent/state/netboot-table';
import { SignalingEventSink } from '../../agent/state/event-delivery';
import type { BootEvent } from '../../schemas/rollout';
import { repoRoot } from '../helpers/sot';
import { temporalCli } from '../helpers/vaquero-env';

const run = promisify(execFile);
const MAC = '52:54:00:aa:00:01';
const quiet = { info: () => undefined, warn: () => undefined };

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

function event(kind: BootEvent['kind'], n: number): BootEvent {
  return { kind, mac: MAC, at: new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString(), detail: `e${n}` };
}

/** An agent's sink in a process of its own, which the test kills with SIGKILL. */
const AGENT_SCRIPT = `
  const { SignalingEventSink } = await import(${JSON.stringify(path.join(repoRoot, 'agent/state/event-delivery.ts'))});
  const { NetbootTable } = await import(${JSON.stringify(path.join(repoRoot, 'agent/state/netboot-table.ts'))});
  const { Client, Connection } = await import('@temporalio/client');
  const client = new Client({ connection: Connection.lazy({ address: process.env.VQ_ADDRESS }), namespace: 'default' });
  const sink = new SignalingEventSink({
    client, netboot: new NetbootTable(process.env.VQ_NETBOOT), journal: process.env.VQ_JOURNAL, retryMs: 200,
    logger: { info() {}, warn: (msg) => console.error(msg) },
  });
  for (const e of JSON.parse(process.env.VQ_EVENTS)) sink.emit(e);
  console.log('EMITTED');
  setInterval(() => undefined, 1000);`;

test(
  'events emitted while Temporal is down survive an agent crash and arrive in order, once',
  { timeout: 240_000 },
  async (t) => {
    const work = await mkdtemp(path.join(tmpdir(), 'vq-h2-events-'));
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const devEnv = {
      ...process.env,
      TEMPORAL_PORT: String(port),
      VAQUERO_STATE: work,
      TEMPORAL_BIN: temporalCli(),
    };
    const dev = (cmd: 'start' | 'stop') =>
      run('bash', [path.join(repoRoot, 'scripts/temporal-dev.sh'), cmd], { env: devEnv, timeout: 120_000 });
    t.after(async () => {
      await dev('stop').catch(() => undefined);
      await rm(work, { recursive: true, force: true });
    });
    try {
      await dev('start');
    } catch (err) {
      const reason = `could not start a Temporal dev server: ${(err as Error).message.split('\n')[0]}`;
      if (process.env.CI && process.env.CI !== 'false') throw new Error(reason);
      t.skip(reason);
      return;
    }

    const connection = await Connection.connect({ address });
    t.after(() => connection.close());
    const client = new Client({ connection, namespace: 'default' });
    // A workflow nobody runs: its history still records every signal it is sent, which is what counts.
    const workflowId = `vq-h2-events-${Date.now()}`;
    const handle = await client.workflow.start('waitsForBootEvents', {
      taskQueue: `vq-h2-nobody-${port}`,
      workflowId,
      workflowExecutionTimeout: '10 minutes',
    });
    t.after(() => handle.terminate('test over').catch(() => undefined));
    const netbootFile = path.join(work, 'agent/netboot.json');
    const journal = path.join(work, 'agent/events.jsonl');
    await new NetbootTable(netbootFile).arm({
      mac: MAC,
      site: 'sim1',
      host: 'h1',
      commit: 'c1',
      stage: 2,
      workflowId,
      armedAt: new Date().toISOString(),
      token: 'agent-event-buffer-test-boot-token',
    });
    const signals = async (): Promise<{ detail?: string; kind: string; stage?: number }[]> => {
      const history = await handle.fetchHistory();
      return (history.events ?? [])
        .map((e) => e.workflowExecutionSignaledEventAttributes)
        .filter((a) => a?.signalName === 'boot-event')
        .map((a) => defaultPayloadConverter.fromPayload<BootEvent>(a!.input!.payloads![0]!));
    };

    // Delivered at once while the server is up; the journal is empty afterwards.
    const lazy = Connection.lazy({ address });
    t.after(() => lazy.close());
    const first = new SignalingEventSink({
      client: new Client({ connection: lazy, namespace: 'default' }),
      netboot: new NetbootTable(netbootFile),
      logger: quiet,
      journal,
      retryMs: 200,
    });
    first.emit(event('dhcp', 1));
    await first.drain();
    assert.deepEqual(
      (await signals()).map((s) => [s.detail, s.stage]),
      [['e1', 2]],
    );
    assert.equal(await readFile(journal, 'utf8'), '');

    await dev('stop');
    const emitted = [event('tftp', 2), event('ipxe', 3), event('kernel', 4), event('checkpoint', 5)];
    const agent = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', AGENT_SCRIPT], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        VQ_ADDRESS: address,
        VQ_NETBOOT: netbootFile,
        VQ_JOURNAL: journal,
        VQ_EVENTS: JSON.stringify(emitted),
      },
    });
    t.after(() => agent.kill('SIGKILL'));
    let stderr = '';
    agent.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    await new Promise<void>((resolve, reject) => {
      agent.stdout.on('data', (d: Buffer) => d.toString().includes('EMITTED') && resolve());
      agent.once('exit', (code) => reject(new Error(`agent exited (${code}): ${stderr}`)));
    });
    // Let it try (its gRPC calls fail or wait for the server), then kill it the hard way.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    agent.kill('SIGKILL');
    await new Promise((resolve) => agent.once('exit', resolve));
    const buffered = (await readFile(journal, 'utf8')).trim().split('\n');
    assert.equal(buffered.length, 4, 'the four undelivered events are on disk');

    await dev('start');
    const second = new SignalingEventSink({
      client: new Client({ connection: lazy, namespace: 'default' }),
      netboot: new NetbootTable(netbootFile),
      logger: quiet,
      journal,
      retryMs: 200,
    });
    await second.drain();
    assert.deepEqual(
      (await signals()).map((s) => s.detail),
      ['e1', 'e2', 'e3', 'e4', 'e5'],
    );
    assert.deepEqual(
      (await signals()).map((s) => s.kind),
      ['dhcp', 'tftp', 'ipxe', 'kernel', 'checkpoint'],
    );
    assert.equal(await readFile(journal, 'utf8'), '', 'delivered events leave the journal');

    // Delivered, then the acknowledgement lost (crash between the two): the next start re-sends the
    // entry with the same request id, and the server does not record it again.
    second.emit(event('unattended', 6));
    await second.drain();
    const delivered = (await signals()).length;
    const entry = { seq: 1000, id: 'replayed-request-id', event: event('checkpoint', 7) };
    await appendFile(journal, `${JSON.stringify(entry)}\n`);
    await new SignalingEventSink({
      client: new Client({ connection: lazy, namespace: 'default' }),
      netboot: new NetbootTable(netbootFile),
      logger: quiet,
      journal,
    }).drain();
    await appendFile(journal, `${JSON.stringify(entry)}\n`);
    await new SignalingEventSink({
      client: new Client({ connection: lazy, namespace: 'default' }),
      netboot: new NetbootTable(netbootFile),
      logger: quiet,
      journal,
    }).drain();
    const after = await signals();
    assert.equal(after.length, delivered + 1, 'a replayed request id is recorded once');
    assert.deepEqual(after.map((s) => s.detail).slice(-2), ['e6', 'e7']);

    // A closed workflow: the event is dropped (logged), not retried forever, and leaves the journal.
    await handle.terminate('done');
    const warnings: string[] = [];
    const last = new SignalingEventSink({
      client: new Client({ connection: lazy, namespace: 'default' }),
      netboot: new NetbootTable(netbootFile),
      logger: { info: () => undefined, warn: (msg) => warnings.push(msg) },
      journal,
    });
    last.emit(event('checkpoint', 8));
    await last.drain();
    assert.deepEqual(warnings, ['boot event for a closed workflow dropped']);
    assert.equal(await readFile(journal, 'utf8'), '');
  },
);
