// Two agents on one broadcast domain both answer a host's DISCOVER; the host's REQUEST names the one
// it chose (option 54). Only that agent reports the DHCP step to the workflow (issue 13 item 3): the
// other's events stay local (logs, boot-traffic evidence), so the step reaches the workflow once.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { before, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { MessageType } from '../../agent/dhcp/codec';
import { handleDhcp, type HandlerContext } from '../../agent/dhcp/handler';
import { leasesFromModel, mapBackend } from '../../agent/dhcp/leases';
import { SignalingEventSink } from '../../agent/state/event-delivery';
import { validateSot } from '../../sot/validate';
import { CORE1_MAC, dhcpRequest } from '../helpers/dhcp-packets';
import { sotMin } from '../helpers/sot';

const AGENT_A = '10.10.0.5';
const AGENT_B = '10.10.0.6';
const RESERVED = [10, 10, 0, 11];
const ip = (s: string) => s.split('.').map(Number);
let a: HandlerContext;
let b: HandlerContext;

before(async () => {
  const result = await validateSot(sotMin);
  assert.ok(result.model, JSON.stringify(result.diagnostics));
  const backend = mapBackend(leasesFromModel(result.model, 'lab1', new Set([CORE1_MAC])));
  const now = new Date('2026-01-02T03:04:05Z');
  a = { serverIp: AGENT_A, backend, now };
  b = { serverIp: AGENT_B, backend, now };
});

test('both agents offer on a DISCOVER; neither reports it to the workflow', () => {
  for (const ctx of [a, b]) {
    const result = handleDhcp(dhcpRequest({ type: MessageType.Discover }), ctx);
    assert.equal(result.outcome, 'offer');
    assert.equal(result.event?.kind, 'dhcp', 'still an event: the logs and the boot-traffic evidence');
    assert.equal(result.event?.reported, false);
  }
});

test("the REQUEST naming agent A is reported by A only; B's answer is none", () => {
  const request = dhcpRequest({
    type: MessageType.Request,
    options: [
      [54, ip(AGENT_A)],
      [50, RESERVED],
    ],
  });
  const chosen = handleDhcp(request, a);
  assert.equal(chosen.outcome, 'ack');
  assert.equal(chosen.event?.kind, 'dhcp');
  assert.notEqual(chosen.event?.reported, false);
  const other = handleDhcp(request, b);
  assert.equal(other.outcome, 'ignored');
  assert.equal(other.event, undefined);
});

test('an event not to be reported is neither journaled nor sent', async (t) => {
  const work = await mkdtemp(path.join(tmpdir(), 'vq-chosen-'));
  t.after(() => rm(work, { recursive: true, force: true }));
  const journal = path.join(work, 'events.jsonl');
  // Never connected: nothing is sent, so nothing needs a server.
  const connection = Connection.lazy({ address: '127.0.0.1:1' });
  t.after(() => connection.close());
  const sink = new SignalingEventSink({
    client: new Client({ connection }),
    netboot: { lookup: () => Promise.reject(new Error('not asked for an event that is not reported')) },
    logger: { info: () => undefined, warn: () => undefined },
    journal,
  });
  const discover = handleDhcp(dhcpRequest({ type: MessageType.Discover }), b).event;
  assert.ok(discover);
  sink.emit(discover);
  assert.equal(sink.backlog, 0);
  await sink.drain();
  assert.equal(await readFile(journal, 'utf8').catch(() => ''), '');
});
