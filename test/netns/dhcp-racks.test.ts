// Racks and redundant agents (issue 13), with real clients: two agents on one bridge answer the same
// DISCOVER alike, each as itself; a relay (ISC dhcrelay) from a rack is answered by the rack's agent
// only; a multi-homed agent answers on its boot interface only.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { before, test, type TestContext } from 'node:test';
import { decode, MessageType, type DhcpPacket } from '../../agent/dhcp/codec';
import { messageType, optionIp } from '../../agent/dhcp/codec-options';
import { leasesFromModel, servedCidrs } from '../../agent/dhcp/leases';
import {
  addAddress,
  addBridge,
  addVeth,
  createNamespaces,
  ip,
  linkUp,
  netnsProblem,
  type Namespaces,
} from '../../cli/lab/netns';
import type { Model } from '../../schemas/model';
import type { BootEvent } from '../../schemas/rollout';
import { validateSot } from '../../sot/validate';
import { BUSYBOX, setMac, udhcpc } from '../helpers/dhcp-client';
import { startDhcpServerIn } from '../helpers/dhcp-server-process';
import { materialize, removeSot, repoRoot } from '../helpers/sot';

const IN_CI = Boolean(process.env.CI) && process.env.CI !== 'false';
const DHCRELAY = '/usr/sbin/dhcrelay';
const TCPDUMP = ['/usr/bin/tcpdump', '/usr/sbin/tcpdump'].find((p) => existsSync(p));
const CORE1 = '52:54:00:10:00:01';
const RACK2_HOST = '52:54:00:12:00:01';

let model: Model;

before(async () => {
  const dir = await materialize(path.join(repoRoot, 'test/fixtures/racks'));
  try {
    const result = await validateSot(dir);
    assert.ok(result.model, JSON.stringify(result.diagnostics));
    model = result.model;
  } finally {
    await removeSot(dir);
  }
});

async function skipWithout(t: TestContext, ...tools: [string, string | undefined][]): Promise<boolean> {
  const missing =
    (await netnsProblem()) ??
    (BUSYBOX ? undefined : 'busybox not found (apt-get install busybox-static)') ??
    tools.find(([, found]) => !found || !existsSync(found))?.[0];
  if (!missing) return false;
  if (IN_CI) throw new Error(`${missing}; CI must provide it`);
  t.skip(missing);
  return true;
}

const leasesOf = (agent: string) => [...leasesFromModel(model, 'lab1', new Set(), agent).values()];

async function setup(t: TestContext, names: string[]) {
  const id = Math.random().toString(16).slice(2, 7);
  const ns = names.map((n) => `vqk-${id}-${n}`);
  const net = await createNamespaces(ns);
  t.after(() => net.close());
  const dir = await mkdtemp(path.join(tmpdir(), 'vqk-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  // Interface names: short (15 bytes at most) and unique across parallel runs.
  return { net, dir, ns, link: (n: string) => `vqk${id}${n}` };
}

async function up(links: [string, string][]): Promise<void> {
  for (const [ns, link] of links) await linkUp(ns, link);
}

/** tcpdump writing every DHCP packet on a link to a file, until the returned stop is called. */
async function capture(net: Namespaces, ns: string, link: string, file: string) {
  const child: ChildProcess = net.spawn(ns, TCPDUMP ?? 'tcpdump', [
    '-i',
    link,
    '--immediate-mode',
    '-U',
    '-w',
    file,
    'udp',
  ]);
  await new Promise<void>((resolve, reject) => {
    let err = '';
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('listening on')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`tcpdump exited (${code}): ${err}`)));
  });
  return async (): Promise<DhcpPacket[]> => {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGINT');
    await exited;
    return dhcpPackets(await readFile(file));
  };
}

/** The DHCP payloads of a pcap file of Ethernet frames carrying IPv4/UDP. */
function dhcpPackets(pcap: Buffer): DhcpPacket[] {
  const out: DhcpPacket[] = [];
  for (let at = 24; at + 16 <= pcap.length;) {
    const length = pcap.readUInt32LE(at + 8);
    const frame = pcap.subarray(at + 16, at + 16 + length);
    at += 16 + length;
    if (frame.readUInt16BE(12) !== 0x0800) continue;
    const udp = 14 + ((frame[14] ?? 0) & 0x0f) * 4;
    const decoded = decode(frame.subarray(udp + 8));
    if (decoded.ok) out.push(decoded.packet);
  }
  return out;
}

test('two agents on one bridge offer the same DISCOVER the same lease and options, each as itself', async (t) => {
  if (await skipWithout(t, ['tcpdump not found (apt-get install tcpdump)', TCPDUMP])) return;
  const { net, dir, ns, link } = await setup(t, ['sw', 'a', 'b', 'c']);
  const [sw, a, b, c] = ns as [string, string, string, string];
  const br = link('br');
  await addBridge(sw, br);
  for (const [peer, n] of [
    [a, 'a'],
    [b, 'b'],
    [c, 'c'],
  ] as const) {
    await addVeth(peer, link(n), sw, link(`s${n}`));
    await ip(['-n', sw, 'link', 'set', link(`s${n}`), 'master', br]);
    await up([
      [peer, link(n)],
      [sw, link(`s${n}`)],
    ]);
  }
  await up([[sw, br]]);
  await addAddress(a, link('a'), '10.10.0.5/24');
  await addAddress(b, link('b'), '10.10.0.6/24');
  // No broadcast route in the agents' namespaces: a reply leaves by the interface of its source.
  const agentA = await startDhcpServerIn(net, a, {
    ...{ address: '10.10.0.5', interface: link('a'), bindInterface: true },
    leases: leasesOf('lab1-agent'),
  });
  const agentB = await startDhcpServerIn(net, b, {
    ...{ address: '10.10.0.6', interface: link('b'), bindInterface: true },
    leases: leasesOf('lab1-agent-b'),
  });

  await setMac(net, c, link('c'), CORE1);
  await ip(['-n', c, 'route', 'add', '255.255.255.255/32', 'dev', link('c')]);
  const stop = await capture(net, c, link('c'), path.join(dir, 'c.pcap'));
  // A BIOS PXE ROM's DISCOVER (option 60, arch 0 in option 93), so the offers carry a boot server.
  const args = ['-V', 'PXEClient:Arch:00000:UNDI:002001', '-x', '0x5d:0000'];
  const env = await udhcpc(net, c, link('c'), dir, { tries: 3, timeoutS: 2, args });
  await new Promise((resolve) => setTimeout(resolve, 300));
  const packets = await stop();
  assert.equal(env.get('ip'), '10.10.0.11');
  assert.ok(['10.10.0.5', '10.10.0.6'].includes(env.get('serverid') ?? ''), env.get('serverid'));

  const offers = packets.filter((p) => messageType(p) === MessageType.Offer);
  const xid = offers[0]?.xid;
  const first = offers.filter((p) => p.xid === xid);
  const ids = first.map((p) => optionIp(p, 54)).sort();
  assert.deepEqual(ids, ['10.10.0.5', '10.10.0.6'], `offers: ${JSON.stringify(offers.map((p) => p.xid))}`);
  for (const offer of first) {
    const self = optionIp(offer, 54) ?? '';
    assert.equal(offer.yiaddr, '10.10.0.11');
    assert.equal(offer.siaddr, self, 'next server');
    assert.equal(Buffer.from(offer.options.get(66) ?? []).toString(), self, 'option 66');
    assert.equal(offer.file, 'undionly.kpxe');
  }
  const [x, y] = first.map((p) => {
    const options = new Map(p.options);
    for (const own of [54, 66]) options.delete(own);
    return [...options].map(([code, value]) => `${code}=${Buffer.from(value).toString('hex')}`).sort();
  });
  assert.deepEqual(x, y, 'the same options but the server identifier and boot server');
  // Both saw the DISCOVER; only the chosen one acknowledged the REQUEST.
  const acks = packets.filter((p) => messageType(p) === MessageType.Ack);
  assert.deepEqual(
    acks.map((p) => optionIp(p, 54)),
    [env.get('serverid')],
  );
  for (const agent of [agentA, agentB]) assert.equal((await agent.counters()).offer, 1);
  // What reaches the host's workflow (issue 13 item 3): the DHCP step from the chosen agent only.
  const reported = (agent: typeof agentA) =>
    agent.lines
      .filter((l) => l.startsWith('{"event"'))
      .map((l) => (JSON.parse(l) as { event: BootEvent }).event)
      .filter((e) => e.kind === 'dhcp' && e.reported !== false);
  const [chosen, other] = env.get('serverid') === '10.10.0.5' ? [agentA, agentB] : [agentB, agentA];
  assert.equal(reported(chosen).length, 1, JSON.stringify(chosen.lines));
  assert.match(reported(chosen)[0]?.detail ?? '', /^REQUEST \(selecting\) -> ACK 10\.10\.0\.11/);
  assert.deepEqual(reported(other), [], 'the agent not chosen reports nothing');
});

test('a relayed DISCOVER is answered by the agent of its rack only; the other counts it', async (t) => {
  if (await skipWithout(t, [`${DHCRELAY} not found (apt-get install isc-dhcp-relay)`, DHCRELAY])) return;
  const { net, dir, ns, link } = await setup(t, ['c', 'r', 's1', 's2']);
  const [c, r, s1, s2] = ns as [string, string, string, string];
  const [cIf, rDown, br] = [link('c'), link('rd'), link('br')];
  await addVeth(c, cIf, r, rDown);
  await addBridge(r, br);
  for (const [s, n] of [
    [s1, '1'],
    [s2, '2'],
  ] as const) {
    await addVeth(s, link(`s${n}`), r, link(`u${n}`));
    await ip(['-n', r, 'link', 'set', link(`u${n}`), 'master', br]);
    await up([
      [s, link(`s${n}`)],
      [r, link(`u${n}`)],
    ]);
  }
  await up([
    [c, cIf],
    [r, rDown],
    [r, br],
  ]);
  // The client's link is rack 2 (lab1-rack2, the relay is its gateway); both agents sit upstream.
  await addAddress(r, rDown, '10.12.0.1/24');
  await addAddress(r, br, '10.99.0.1/24');
  await addAddress(s1, link('s1'), '10.99.0.7/24');
  await addAddress(s2, link('s2'), '10.99.0.5/24');
  for (const s of [s1, s2]) await ip(['-n', s, 'route', 'add', '10.12.0.0/24', 'via', '10.99.0.1']);
  await ip(['-n', c, 'route', 'add', '255.255.255.255/32', 'dev', cIf]);

  const provAgent = await startDhcpServerIn(net, s1, {
    ...{ address: '10.99.0.7', interface: link('s1'), bindInterface: true },
    leases: leasesOf('lab1-agent'),
    servedCidrs: servedCidrs(model, 'lab1', 'lab1-agent'),
  });
  const rackAgent = await startDhcpServerIn(net, s2, {
    ...{ address: '10.99.0.5', interface: link('s2'), bindInterface: true },
    leases: leasesOf('lab1-rack2-agent'),
    servedCidrs: servedCidrs(model, 'lab1', 'lab1-rack2-agent'),
  });
  const relayLog: string[] = [];
  const dhcrelay = net.spawn(r, DHCRELAY, [
    ...['-4', '-d', '-pf', path.join(dir, 'dhcrelay.pid')],
    ...['-id', rDown, '-iu', br, '10.99.0.7', '10.99.0.5'],
  ]);
  await new Promise<void>((resolve, reject) => {
    dhcrelay.stderr?.on('data', (d: Buffer) => {
      relayLog.push(d.toString());
      if (relayLog.join('').includes('Sending on   Socket/fallback')) resolve();
    });
    dhcrelay.once('exit', (code) => reject(new Error(`dhcrelay exited (${code}): ${relayLog.join('')}`)));
  });

  await setMac(net, c, cIf, RACK2_HOST);
  const env = await udhcpc(net, c, cIf, dir, { tries: 3, timeoutS: 2 }).catch((err: unknown) => {
    throw new Error(`no lease through the relay: ${String(err)}\n${relayLog.join('')}`);
  });
  assert.equal(env.get('ip'), '10.12.0.21');
  assert.equal(env.get('serverid'), '10.99.0.5');
  assert.equal(env.get('router'), '10.12.0.1');

  const prov = await provAgent.counters();
  assert.ok((prov['unserved-relay'] ?? 0) >= 2, JSON.stringify(prov));
  assert.deepEqual([prov.offer, prov.ack], [0, 0], JSON.stringify(prov));
  assert.ok(!provAgent.lines.some((l) => l.startsWith('{"event"')), provAgent.lines.join('\n'));
  assert.ok(
    provAgent.lines.some((l) => l.includes('relayed by 10.12.0.1: not in a subnet this agent serves')),
  );
  const rack = await rackAgent.counters();
  assert.deepEqual([rack.offer, rack.ack, rack['unserved-relay']], [1, 1, 0]);
});

test('an agent with two interfaces answers on its boot interface only', async (t) => {
  if (await skipWithout(t)) return;
  const { net, dir, ns, link } = await setup(t, ['s', 'cb', 'co']);
  const [s, boot, other] = ns as [string, string, string];
  await addVeth(s, link('sb'), boot, link('b'));
  await addVeth(s, link('so'), other, link('o'));
  await up([
    [s, link('sb')],
    [s, link('so')],
    [boot, link('b')],
    [other, link('o')],
  ]);
  await addAddress(s, link('sb'), '10.10.0.5/24');
  await addAddress(s, link('so'), '10.30.0.5/24');
  await addAddress(other, link('o'), '10.30.0.1/24');
  // The box's default route is on the other network, as an office uplink would be: a reply to
  // 255.255.255.255 routed like any other datagram would leave there.
  await ip(['-n', s, 'route', 'add', 'default', 'via', '10.30.0.1']);
  for (const [n, l] of [
    [boot, link('b')],
    [other, link('o')],
  ] as const)
    await ip(['-n', n, 'route', 'add', '255.255.255.255/32', 'dev', l]);
  const agent = await startDhcpServerIn(net, s, {
    ...{ address: '10.10.0.5', interface: link('sb'), bindInterface: true },
    leases: leasesOf('lab1-agent'),
  });

  // A reserved MAC heard on the other network gets no lease there.
  await setMac(net, other, link('o'), CORE1);
  await assert.rejects(udhcpc(net, other, link('o'), dir, { tries: 2, timeoutS: 1 }));
  // Nor one whose reservation is on no network of the boot interface.
  await setMac(net, other, link('o'), RACK2_HOST);
  await assert.rejects(udhcpc(net, other, link('o'), dir, { tries: 2, timeoutS: 1 }));
  assert.ok(((await agent.counters()).offer ?? 0) >= 4, 'the offers left by the boot interface');

  await setMac(net, boot, link('b'), CORE1);
  const env = await udhcpc(net, boot, link('b'), dir, { tries: 3, timeoutS: 2 });
  assert.equal(env.get('ip'), '10.10.0.11');
  assert.equal(env.get('serverid'), '10.10.0.5');
});
