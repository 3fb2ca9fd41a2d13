// Issue 18 item 6: a flood from unknown MACs must be counted, not written out line by line. 10,000
// DISCOVERs, each from another MAC, at the real DHCP socket loop on loopback.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { test } from 'node:test';
import { MessageType } from '../../agent/dhcp/codec';
import { mapBackend } from '../../agent/dhcp/leases';
import { startDhcpServer, type DhcpServer } from '../../agent/dhcp/server';
import { opt, rawRequest } from '../helpers/dhcp-packets';

const PACKETS = 10_000;
const BATCH = 500;

const macOf = (i: number) =>
  [
    '02',
    '00',
    ...[i >>> 16, (i >>> 8) & 0xff, i & 0xff, 0x99].map((b) => b.toString(16).padStart(2, '0')),
  ].join(':');

const handled = (server: DhcpServer) => Object.values(server.counters).reduce((a, b) => a + b, 0);

async function until(check: () => boolean, what: string) {
  const end = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

test('10,000 packets from unknown MACs: all counted, a bounded number of log lines', async () => {
  const lines: { level: string; msg: string; suppressed?: number }[] = [];
  const server = await startDhcpServer({
    address: '127.0.0.1',
    bindAddress: '127.0.0.1',
    port: 0,
    backend: mapBackend(new Map()),
    events: { emit: () => assert.fail('no events for unknown MACs') },
    log: (entry) => lines.push(entry),
  });
  const client = dgram.createSocket('udp4');
  const started = Date.now();
  try {
    // In batches the receive buffer holds: a lost datagram would make the count wrong, not the loop.
    for (let sent = 0; sent < PACKETS;) {
      for (const end = sent + BATCH; sent < end; sent++) {
        const packet = rawRequest([...opt(53, [MessageType.Discover]), 255], { mac: macOf(sent), xid: sent });
        client.send(packet, server.port, '127.0.0.1');
      }
      await until(() => handled(server) >= sent, `${sent} packets handled`);
    }
  } finally {
    client.close();
    await server.close();
  }
  const elapsed = Date.now() - started;
  assert.equal(server.counters['unknown-mac'], PACKETS);
  const perPacket = lines.filter((l) => l.msg.includes('from unknown MAC'));
  const summaries = lines.filter((l) => l.suppressed !== undefined);
  assert.ok(lines.length <= 30, `${lines.length} log lines for ${PACKETS} packets in ${elapsed} ms`);
  assert.ok(perPacket.length >= 1, 'a sample of the packets is logged');
  assert.equal(
    perPacket.length + summaries.reduce((n, l) => n + (l.suppressed ?? 0), 0),
    PACKETS,
    'every line not written is counted in a summary',
  );
  assert.match(summaries.at(-1)?.msg ?? '', /unknown-mac: \d+ more lines? suppressed/);
});
