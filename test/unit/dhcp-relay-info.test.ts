// RFC 3046 section 2.2: a reply to a relayed request carries the relay's option 82 unchanged, as the
// last option before END; relays drop replies without it. Crafted packets through the pure handlers
// and the encoder (the real relay is in test/netns/dhcp-relay.test.ts).
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { validateSot } from '../../sot/validate';
import { encode, MessageType } from '../../agent/dhcp/codec';
import { handleDhcp, type HandlerContext, type HandlerResult } from '../../agent/dhcp/handler';
import { leasesFromModel, mapBackend } from '../../agent/dhcp/leases';
import { handleProxyDhcp } from '../../agent/dhcp/proxy';
import { dhcpRequest, type OptionValue } from '../helpers/dhcp-packets';
import { sotMin } from '../helpers/sot';

const SERVER = '10.10.0.5';
const RELAY = '10.20.0.1';
// Circuit id "eth0:vlan100", remote id 6 bytes: what dhcrelay -a and switches put in.
const AGENT_INFO = [1, 12, ...Buffer.from('eth0:vlan100'), 2, 6, 0x52, 0x54, 0, 0xaa, 0xbb, 0xcc];
const ip = (s: string) => s.split('.').map(Number);
let ctx: HandlerContext;

before(async () => {
  const { model, diagnostics } = await validateSot(sotMin);
  assert.ok(model, JSON.stringify(diagnostics));
  ctx = {
    serverIp: SERVER,
    backend: mapBackend(leasesFromModel(model, 'lab1')),
    now: new Date('2026-01-02T03:04:05Z'),
  };
});

/** The reply's options as they are on the wire: [code, value] in order, up to END. */
function wireOptions(result: HandlerResult): [number, number[]][] {
  assert.ok(result.reply, `no reply: ${JSON.stringify(result.log)}`);
  const bytes = encode(result.reply.packet, result.reply.encode);
  const out: [number, number[]][] = [];
  let i = 240;
  while (i < bytes.length && bytes[i] !== 255) {
    if (bytes[i] === 0) {
      i++;
      continue;
    }
    const len = bytes[i + 1] ?? 0;
    out.push([bytes[i] ?? 0, [...bytes.subarray(i + 2, i + 2 + len)]]);
    i += 2 + len;
  }
  assert.equal(bytes[i], 255, 'the option area ends with END');
  return out;
}

function relayed(type: MessageType, options: [number, OptionValue][] = []) {
  return dhcpRequest({ type, giaddr: RELAY, options: [...options, [82, AGENT_INFO]] });
}

function assertEchoedLast(result: HandlerResult, type: MessageType) {
  const options = wireOptions(result);
  assert.deepEqual(options[0], [53, [type]]);
  assert.deepEqual(options.at(-1), [82, AGENT_INFO], 'option 82 is the last option before END');
  assert.equal(options.filter(([code]) => code === 82).length, 1);
}

test('relayed DISCOVER: the OFFER echoes option 82 last', () => {
  assertEchoedLast(handleDhcp(relayed(MessageType.Discover), ctx), MessageType.Offer);
});

test('relayed REQUEST: the ACK echoes option 82 last, even when the client asked for 82 in 55', () => {
  const request = relayed(MessageType.Request, [
    [55, [82, 1, 3, 6]],
    [54, ip(SERVER)],
    [50, ip('10.10.0.11')],
  ]);
  assertEchoedLast(handleDhcp(request, ctx), MessageType.Ack);
});

test('relayed REQUEST for a wrong address: the NAK echoes option 82 last', () => {
  const result = handleDhcp(relayed(MessageType.Request, [[50, ip('10.10.0.99')]]), ctx);
  assert.equal(result.outcome, 'nak');
  assertEchoedLast(result, MessageType.Nak);
});

test('relayed INFORM: the ACK echoes option 82 last', () => {
  const request = dhcpRequest({
    type: MessageType.Inform,
    giaddr: RELAY,
    ciaddr: '10.10.0.11',
    options: [[82, AGENT_INFO]],
  });
  assertEchoedLast(handleDhcp(request, ctx), MessageType.Ack);
});

test('ProxyDHCP OFFER to a relayed PXE DISCOVER echoes option 82 last', () => {
  const request = relayed(MessageType.Discover, [
    [93, [0, 0]],
    [60, 'PXEClient:Arch:00000:UNDI:002001'],
  ]);
  const from = { address: RELAY, port: 67 };
  const result = handleProxyDhcp(request, { ...ctx, localPort: 67, from });
  assertEchoedLast(result, MessageType.Offer);
});

test('option 82 survives a reply cut to the client’s 576-byte maximum; other options give way', () => {
  const long = 'x'.repeat(200);
  const request = relayed(MessageType.Discover, [
    [57, [2, 64]],
    [55, [1, 3, 6, 12, 15, 28]],
  ]);
  const result = handleDhcp(request, ctx);
  assert.ok(result.reply);
  // A big custom option the server would otherwise send, pushing the reply past 576 bytes.
  result.reply.packet.options.set(224, Buffer.from(long));
  result.reply.packet.options.set(225, Buffer.from(long));
  const bytes = encode(result.reply.packet, result.reply.encode);
  assert.ok(bytes.length <= 576 - 28, `${bytes.length} bytes`);
  assertEchoedLast(result, MessageType.Offer);
});

test('a request without option 82 gets a reply without it', () => {
  const options = wireOptions(handleDhcp(dhcpRequest({ type: MessageType.Discover, giaddr: RELAY }), ctx));
  assert.equal(
    options.some(([code]) => code === 82),
    false,
  );
});
