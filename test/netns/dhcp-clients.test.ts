// Our DHCP server against real clients (ISC dhclient, busybox udhcpc), each side in its own network
// namespace created by the test.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { validateSot } from '../../sot/validate';
import { leasesFromModel } from '../../agent/dhcp/leases';
import { createNetnsPair, netnsProblem } from '../../cli/lab/netns';
import { BUSYBOX, setMac, udhcpc } from '../helpers/dhcp-client';
import { startDhcpServerIn } from '../helpers/dhcp-server-process';
import { sotMin } from '../helpers/sot';

const IN_CI = Boolean(process.env.CI) && process.env.CI !== 'false';
const DHCLIENT = '/usr/sbin/dhclient';
const SERVER_IP = '10.10.0.5';
const agentDir = fileURLToPath(new URL('../../agent/dhcp/', import.meta.url));

const RELAY_IP = '10.10.0.1';

/** A relay agent on port 67 in namespace b: garbage first, then a relayed DISCOVER for core-01. */
const RELAY_SCRIPT = `
  const dgram = await import('node:dgram');
  const { randomBytes } = await import('node:crypto');
  const { decode, encode } = await import(${JSON.stringify(path.join(agentDir, 'codec.ts'))});
  const socket = dgram.createSocket('udp4');
  await new Promise((resolve) => socket.bind(67, '${RELAY_IP}', resolve));
  for (let i = 0; i < 2000; i++) socket.send(randomBytes(i % 400), 67, '${SERVER_IP}');
  const chaddr = new Uint8Array(16);
  chaddr.set([0x52, 0x54, 0, 0x10, 0, 1]);
  const discover = encode({
    op: 1, htype: 1, hlen: 6, hops: 1, xid: 0x5150, secs: 0, flags: 0, ciaddr: '0.0.0.0', yiaddr: '0.0.0.0',
    siaddr: '0.0.0.0', giaddr: '${RELAY_IP}', chaddr, sname: '', file: '', options: new Map([[53, Uint8Array.of(1)]]),
  });
  socket.on('message', (msg, from) => {
    const d = decode(msg);
    if (!d.ok || d.packet.xid !== 0x5150) return;
    const { yiaddr, giaddr } = d.packet;
    console.log(JSON.stringify({ from: from.address + ':' + from.port, type: d.packet.options.get(53)[0], yiaddr, giaddr }));
    process.exit(0);
  });
  // Retransmitted like a relay would: garbage may have filled the server's receive buffer.
  setInterval(() => socket.send(discover, 67, '${SERVER_IP}'), 500);
  setTimeout(() => process.exit(1), 10000);`;

async function missingTools(): Promise<string | undefined> {
  const netns = await netnsProblem();
  if (netns) return netns;
  if (!existsSync(DHCLIENT)) return `${DHCLIENT} not found (apt-get install isc-dhcp-client)`;
  if (!BUSYBOX) return 'busybox not found (apt-get install busybox-static)';
  return undefined;
}

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'vqd-dhcp-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('real DHCP clients get their reservations and options', { timeout: 120_000 }, async (t) => {
  const missing = await missingTools();
  if (missing) {
    if (IN_CI) throw new Error(`${missing}; CI must provide it`);
    t.skip(missing);
    return;
  }
  const { model, diagnostics } = await validateSot(sotMin);
  assert.ok(model, JSON.stringify(diagnostics));
  const leases = [...leasesFromModel(model, 'lab1').values()];
  const net = await createNetnsPair({ tag: 'vqd', a: [`${SERVER_IP}/24`] });
  t.after(() => net.close());
  const server = await startDhcpServerIn(net, net.a, { address: SERVER_IP, interface: net.ifA, leases });
  const dir = await tempDir(t);

  await t.test('ISC dhclient', async (t) => {
    await setMac(net, net.b, net.ifB, '52:54:00:10:00:01');
    const leaseFile = path.join(dir, 'dhclient.leases');
    const pidFile = path.join(dir, 'dhclient.pid');
    const conf = path.join(dir, 'dhclient.conf');
    await writeFile(
      conf,
      'timeout 20;\nrequest subnet-mask, routers, domain-name-servers, domain-name, host-name;\n',
    );
    t.after(async () => {
      // dhclient forks into the background once bound; stop that process (ours, from its pid file).
      const pid = Number.parseInt(await readFile(pidFile, 'utf8').catch(() => ''), 10);
      if (pid > 0) process.kill(pid, 'SIGKILL');
    });
    const args = ['-1', '-v', '-sf', '/bin/true', '-lf', leaseFile, '-pf', pidFile, '-cf', conf, net.ifB];
    await net.exec(net.b, DHCLIENT, args, 40_000);
    const lease = await readFile(leaseFile, 'utf8');
    assert.match(lease, /fixed-address 10\.10\.0\.11;/);
    assert.match(lease, /option subnet-mask 255\.255\.255\.0;/);
    assert.match(lease, /option routers 10\.10\.0\.1;/);
    assert.match(lease, /option domain-name-servers 10\.10\.0\.2;/);
    assert.match(lease, /option domain-name "lab1\.example\.net";/);
    assert.match(lease, /option host-name "core-01\.lab1\.example\.net";/);
    assert.match(lease, /option dhcp-server-identifier 10\.10\.0\.5;/);
  });

  await t.test('a relayed DISCOVER is answered at the relay, after 2,000 garbage packets', async () => {
    await net.exec(net.b, 'ip', ['addr', 'add', `${RELAY_IP}/24`, 'dev', net.ifB]);
    try {
      const { stdout } = await net.exec(net.b, process.execPath, [
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        RELAY_SCRIPT,
      ]);
      const answer = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>;
      assert.deepEqual(answer, { from: `${SERVER_IP}:67`, type: 2, yiaddr: '10.10.0.11', giaddr: RELAY_IP });
      assert.ok(server.lines.some((l) => l.includes('malformed DHCP packet')));
    } finally {
      await net.exec(net.b, 'ip', ['addr', 'del', `${RELAY_IP}/24`, 'dev', net.ifB]);
    }
  });

  await t.test('busybox udhcpc', async () => {
    await setMac(net, net.b, net.ifB, '52:54:00:10:00:02');
    const env = await udhcpc(net, net.b, net.ifB, dir);
    assert.equal(env.get('ip'), '10.10.0.12');
    assert.equal(env.get('subnet'), '255.255.255.0');
    assert.equal(env.get('router'), '10.10.0.1');
    assert.equal(env.get('dns'), '10.10.0.2');
    assert.equal(env.get('domain'), 'lab1.example.net');
    assert.equal(env.get('hostname'), 'core-02');
    assert.equal(env.get('serverid'), SERVER_IP);
  });

  await t.test('an unknown MAC gets no answer; the server logs it and keeps serving', async () => {
    await setMac(net, net.b, net.ifB, '52:54:00:99:99:99');
    await assert.rejects(udhcpc(net, net.b, net.ifB, dir, { tries: 2, timeoutS: 1 }));
    assert.ok(server.lines.some((l) => l.includes('unknown MAC') && l.includes('52:54:00:99:99:99')));
  });

  const events = server.lines.filter((l) => l.startsWith('{"event"'));
  assert.ok(
    events.some((l) => l.includes('52:54:00:10:00:01') && l.includes('ACK 10.10.0.11')),
    events.join('\n'),
  );
});
