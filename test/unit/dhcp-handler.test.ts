import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { before, test } from 'node:test';
import { validateSot } from '../../sot/validate';
import { BROADCAST_FLAG, decode, encode, MessageType, type DhcpPacket } from '../../agent/dhcp/codec';
import { decodeSubOptions, messageType, optionIp, optionText } from '../../agent/dhcp/codec-options';
import { handleDhcp, type HandlerContext, type HandlerResult } from '../../agent/dhcp/handler';
import { armedBackend, leasesFromModel, mapBackend, type HostLease } from '../../agent/dhcp/leases';
import { NetbootTable } from '../../agent/state/netboot-table';
import type { Model } from '../../schemas/model';
import { dhcpRequest } from '../helpers/dhcp-packets';
import { sotMin } from '../helpers/sot';

const SERVER = '10.10.0.5';
const CORE1 = '52:54:00:10:00:01';
let ctx: HandlerContext;
let leases: Map<string, HostLease>;
let model: Model;

before(async () => {
  const result = await validateSot(sotMin);
  assert.ok(result.model, JSON.stringify(result.diagnostics));
  model = result.model;
  leases = leasesFromModel(model, 'lab1', new Set([CORE1]));
  ctx = { serverIp: SERVER, backend: mapBackend(leases), now: new Date('2026-01-02T03:04:05Z') };
});

function reply(result: HandlerResult): DhcpPacket {
  assert.ok(result.reply, `no reply: ${JSON.stringify(result.log)}`);
  const decoded = decode(encode(result.reply.packet, result.reply.encode));
  assert.ok(decoded.ok);
  return decoded.packet;
}

const ip = (s: string) => s.split('.').map(Number);

test('DISCOVER from a known MAC gets an OFFER of its reservation with the subnet options', () => {
  const result = handleDhcp(dhcpRequest({ type: MessageType.Discover, flags: BROADCAST_FLAG }), ctx);
  const offer = reply(result);
  assert.equal(messageType(offer), MessageType.Offer);
  assert.equal(offer.yiaddr, '10.10.0.11');
  assert.equal(optionIp(offer, 54), SERVER);
  assert.equal(optionIp(offer, 1), '255.255.255.0');
  assert.equal(optionIp(offer, 3), '10.10.0.1');
  assert.equal(optionIp(offer, 6), '10.10.0.2');
  assert.equal(optionText(offer, 12), 'core-01.lab1.example.net');
  assert.equal(optionText(offer, 15), 'lab1.example.net');
  assert.equal(optionIp(offer, 28), '10.10.0.255');
  assert.equal(optionIp(offer, 224), '10.10.0.9');
  assert.deepEqual([...(offer.options.get(51) ?? [])], [0, 0, 0x0e, 0x10]);
  assert.deepEqual(result.reply?.to, { address: '255.255.255.255', port: 68 });
  assert.equal(result.event?.kind, 'dhcp');
  assert.equal(result.event?.mac, CORE1);
  assert.equal(result.event?.at, '2026-01-02T03:04:05.000Z');
});

test('an unknown MAC is logged and counted, never answered', () => {
  const result = handleDhcp(dhcpRequest({ type: MessageType.Discover, mac: '52:54:00:99:99:99' }), ctx);
  assert.equal(result.reply, undefined);
  assert.equal(result.event, undefined);
  assert.equal(result.outcome, 'unknown-mac');
  assert.equal(result.log?.mac, '52:54:00:99:99:99');
});

test('REQUEST (selecting) for our offer is ACKed; for another server it is ignored', () => {
  const selecting = (server: string, wanted: string) =>
    dhcpRequest({
      type: MessageType.Request,
      options: [
        [54, ip(server)],
        [50, ip(wanted)],
      ],
    });
  const ack = reply(handleDhcp(selecting(SERVER, '10.10.0.11'), ctx));
  assert.equal(messageType(ack), MessageType.Ack);
  assert.equal(ack.yiaddr, '10.10.0.11');
  const other = handleDhcp(selecting('10.10.0.200', '10.10.0.77'), ctx);
  assert.equal(other.reply, undefined);
  assert.equal(other.outcome, 'ignored');
});

test('REQUEST for a wrong address is NAKed, broadcast', () => {
  const initReboot = dhcpRequest({ type: MessageType.Request, options: [[50, ip('10.10.0.99')]] });
  const result = handleDhcp(initReboot, ctx);
  const nak = reply(result);
  assert.equal(messageType(nak), MessageType.Nak);
  assert.equal(nak.yiaddr, '0.0.0.0');
  assert.equal(optionIp(nak, 54), SERVER);
  assert.deepEqual(result.reply?.to, { address: '255.255.255.255', port: 68 });
  const renewing = handleDhcp(dhcpRequest({ type: MessageType.Request, ciaddr: '10.10.0.50' }), ctx);
  assert.equal(renewing.outcome, 'nak');
});

test('init-reboot and renewing REQUESTs for the reservation are ACKed; renewals unicast to ciaddr', () => {
  const reboot = handleDhcp(
    dhcpRequest({ type: MessageType.Request, options: [[50, ip('10.10.0.11')]] }),
    ctx,
  );
  assert.equal(reboot.outcome, 'ack');
  const renew = handleDhcp(dhcpRequest({ type: MessageType.Request, ciaddr: '10.10.0.11' }), ctx);
  assert.equal(messageType(reply(renew)), MessageType.Ack);
  assert.deepEqual(renew.reply?.to, { address: '10.10.0.11', port: 68 });
});

test('INFORM gets an ACK without an address or lease time, sent to ciaddr', () => {
  const result = handleDhcp(dhcpRequest({ type: MessageType.Inform, ciaddr: '10.10.0.11' }), ctx);
  const ack = reply(result);
  assert.equal(messageType(ack), MessageType.Ack);
  assert.equal(ack.yiaddr, '0.0.0.0');
  assert.equal(ack.options.has(51), false);
  assert.equal(ack.options.has(58), false);
  assert.equal(optionIp(ack, 6), '10.10.0.2');
  assert.deepEqual(result.reply?.to, { address: '10.10.0.11', port: 68 });
});

test('DECLINE and RELEASE are logged and reported as events, not answered', () => {
  const decline = handleDhcp(
    dhcpRequest({ type: MessageType.Decline, options: [[50, ip('10.10.0.11')]] }),
    ctx,
  );
  assert.equal(decline.reply, undefined);
  assert.equal(decline.outcome, 'declined');
  assert.match(decline.event?.detail ?? '', /DECLINE 10\.10\.0\.11/);
  const release = handleDhcp(dhcpRequest({ type: MessageType.Release, ciaddr: '10.10.0.11' }), ctx);
  assert.equal(release.reply, undefined);
  assert.match(release.event?.detail ?? '', /RELEASE/);
});

test('a relayed request is answered to the relay on port 67, giaddr kept', () => {
  const result = handleDhcp(dhcpRequest({ type: MessageType.Discover, giaddr: '10.10.0.1' }), ctx);
  assert.deepEqual(result.reply?.to, { address: '10.10.0.1', port: 67 });
  assert.equal(reply(result).giaddr, '10.10.0.1');
  const nak = handleDhcp(
    dhcpRequest({ type: MessageType.Request, giaddr: '10.10.0.1', options: [[50, ip('10.10.0.99')]] }),
    ctx,
  );
  assert.deepEqual(nak.reply?.to, { address: '10.10.0.1', port: 67 });
  assert.equal(reply(nak).flags & BROADCAST_FLAG, BROADCAST_FLAG);
});

const bootCases: [string, [number, number[] | string][], string, string | undefined][] = [
  [
    'BIOS PXE (arch 0)',
    [
      [93, [0, 0]],
      [60, 'PXEClient:Arch:00000:UNDI:002001'],
    ],
    'undionly.kpxe',
    'PXEClient',
  ],
  [
    'UEFI x64 (arch 7)',
    [
      [93, [0, 7]],
      [60, 'PXEClient:Arch:00007:UNDI:003000'],
    ],
    'ipxe.efi',
    'PXEClient',
  ],
  ['UEFI BC (arch 9)', [[93, [0, 9]]], 'ipxe.efi', 'PXEClient'],
  [
    'UEFI HTTP boot (arch 16)',
    [
      [93, [0, 16]],
      [60, 'HTTPClient:Arch:00016:UNDI:003000'],
    ],
    'http://10.10.0.5:8080/ipxe.efi',
    'HTTPClient',
  ],
  [
    'iPXE (user class 77)',
    [
      [93, [0, 0]],
      [77, 'iPXE'],
    ],
    'http://10.10.0.5:8080/ipxe/52-54-00-10-00-01',
    undefined,
  ],
];

for (const [name, options, file, vendorClass] of bootCases) {
  test(`boot file for ${name}: ${file}`, () => {
    const offer = reply(handleDhcp(dhcpRequest({ type: MessageType.Discover, options }), ctx));
    assert.equal(optionText(offer, 67), file);
    assert.equal(offer.file, file);
    assert.equal(offer.siaddr, '10.10.0.5');
    assert.equal(optionText(offer, 60), vendorClass);
    const ipxe = decodeSubOptions(offer.options.get(175) ?? new Uint8Array());
    assert.equal(ipxe?.get(176)?.[0], name.startsWith('iPXE') ? 1 : undefined);
  });
}

test('a plain client (no PXE) gets no boot file', () => {
  const offer = reply(
    handleDhcp(dhcpRequest({ type: MessageType.Discover, options: [[60, 'udhcp 1.35.0']] }), ctx),
  );
  assert.equal(offer.options.has(67), false);
  assert.equal(offer.file, '');
});

test('leasesFromModel covers every interface and marks armed hosts', () => {
  const core1 = leases.get(CORE1);
  assert.equal(core1?.armed, true);
  assert.equal(core1?.tftpServer, '10.10.0.5');
  assert.equal(leases.get('52:54:00:10:00:02')?.armed, false);
  assert.ok([...leases.values()].every((l) => l.mac === l.mac.toLowerCase()));
});

test('requests that are not BOOTREQUESTs or lack a message type are ignored', () => {
  const p = dhcpRequest({ type: MessageType.Discover });
  assert.equal(handleDhcp({ ...p, op: 2 }, ctx).outcome, 'ignored');
  assert.equal(handleDhcp({ ...p, options: new Map() }, ctx).outcome, 'ignored');
  assert.equal(handleDhcp({ ...p, options: new Map([[53, Uint8Array.of(2)]]) }, ctx).outcome, 'ignored');
});

test('an event says "(not armed)" as the netboot table says when the packet arrives', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'vq-armed-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const table = new NetbootTable(path.join(dir, 'netboot.json'));
  await table.list();
  const backend = armedBackend(
    () => leasesFromModel(model, 'lab1'),
    (mac) => table.isArmedNow(mac),
  );
  const detail = () =>
    handleDhcp(dhcpRequest({ type: MessageType.Discover }), { ...ctx, backend }).event?.detail;
  assert.equal(detail(), 'DISCOVER -> OFFER 10.10.0.11 (not armed)');
  // The token of agent/http's boot guard rides along; the table stores whatever an arm carries.
  const entry = { mac: CORE1, site: 'lab1', host: 'core-01', commit: 'c1', stage: 1, token: 't' };
  await table.arm({ ...entry, workflowId: 'w1', armedAt: new Date().toISOString() });
  assert.equal(detail(), 'DISCOVER -> OFFER 10.10.0.11');
  await table.disarm(CORE1, 'w1');
  assert.equal(detail(), 'DISCOVER -> OFFER 10.10.0.11 (not armed)');
});
