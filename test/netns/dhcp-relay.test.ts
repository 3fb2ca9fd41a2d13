// A client behind a real relay: busybox udhcpc --- ISC dhcrelay -a -D --- our DHCP server, each in its
// own network namespace. With -a the relay adds option 82 to what it forwards; with -D it drops a reply
// that does not carry it back (RFC 3046 section 2.2; without -D ISC's relay only counts such replies,
// other relays drop them). So the client gets its lease only if the server echoes option 82.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { validateSot } from '../../sot/validate';
import { leasesFromModel } from '../../agent/dhcp/leases';
import {
  addAddress,
  addBroadcastRoute,
  addVeth,
  createNamespaces,
  ip,
  linkUp,
  netnsProblem,
} from '../../cli/lab/netns';
import { BUSYBOX, setMac, udhcpc } from '../helpers/dhcp-client';
import { startDhcpServerIn } from '../helpers/dhcp-server-process';
import { sotMin } from '../helpers/sot';

const IN_CI = Boolean(process.env.CI) && process.env.CI !== 'false';
const DHCRELAY = '/usr/sbin/dhcrelay';
// The client's link is lab1's subnet (the relay is its gateway); the server sits on another one.
const RELAY_DOWN = '10.10.0.1';
const RELAY_UP = '10.99.0.1';
const SERVER_IP = '10.99.0.5';

async function missingTools(): Promise<string | undefined> {
  const netns = await netnsProblem();
  if (netns) return netns;
  if (!existsSync(DHCRELAY)) return `${DHCRELAY} not found (apt-get install isc-dhcp-relay)`;
  if (!BUSYBOX) return 'busybox not found (apt-get install busybox-static)';
  return undefined;
}

test('udhcpc behind dhcrelay -a -D gets its reservation from our server', { timeout: 60_000 }, async (t) => {
  const missing = await missingTools();
  if (missing) {
    if (IN_CI) throw new Error(`${missing}; CI must provide it`);
    t.skip(missing);
    return;
  }
  const { model, diagnostics } = await validateSot(sotMin);
  assert.ok(model, JSON.stringify(diagnostics));
  const id = Math.random().toString(16).slice(2, 8);
  const [client, relay, server] = ['c', 'r', 's'].map((n) => `vqr-${id}-${n}`) as [string, string, string];
  const [cIf, rDown, rUp, sIf] = ['c', 'rd', 'ru', 's'].map((n) => `vqr${id}${n}`) as [
    string,
    string,
    string,
    string,
  ];
  const net = await createNamespaces([client, relay, server]);
  t.after(() => net.close());
  const dir = await mkdtemp(path.join(tmpdir(), 'vqd-relay-'));
  t.after(() => rm(dir, { recursive: true, force: true }));

  await addVeth(client, cIf, relay, rDown);
  await addVeth(server, sIf, relay, rUp);
  await addAddress(relay, rDown, `${RELAY_DOWN}/24`);
  await addAddress(relay, rUp, `${RELAY_UP}/24`);
  await addAddress(server, sIf, `${SERVER_IP}/24`);
  for (const [ns, link] of [
    [client, cIf],
    [relay, rDown],
    [relay, rUp],
    [server, sIf],
  ] as const)
    await linkUp(ns, link);
  await addBroadcastRoute(client, cIf);
  // Replies go to giaddr, the relay's address on the client's subnet.
  await ip(['-n', server, 'route', 'add', '10.10.0.0/24', 'via', RELAY_UP]);

  const leases = [...leasesFromModel(model, 'lab1').values()];
  const dhcp = await startDhcpServerIn(net, server, { address: SERVER_IP, interface: sIf, leases });
  const relayLog: string[] = [];
  const dhcrelay = net.spawn(relay, DHCRELAY, [
    ...['-4', '-d', '-a', '-D', '-pf', path.join(dir, 'dhcrelay.pid')],
    ...['-id', rDown, '-iu', rUp, SERVER_IP],
  ]);
  await new Promise<void>((resolve, reject) => {
    dhcrelay.stderr?.on('data', (d: Buffer) => {
      relayLog.push(d.toString());
      // The last line it prints before it relays.
      if (relayLog.join('').includes(`Sending on   Socket/fallback`)) resolve();
    });
    dhcrelay.once('exit', (code) => reject(new Error(`dhcrelay exited (${code}): ${relayLog.join('')}`)));
  });

  await setMac(net, client, cIf, '52:54:00:10:00:01');
  const env = await udhcpc(net, client, cIf, dir, { tries: 3, timeoutS: 2 }).catch((err: unknown) => {
    throw new Error(`no lease through the relay: ${String(err)}\n${relayLog.join('')}`);
  });
  assert.equal(env.get('ip'), '10.10.0.11');
  assert.equal(env.get('serverid'), SERVER_IP);
  assert.equal(env.get('router'), RELAY_DOWN);
  const events = dhcp.lines.filter((l) => l.startsWith('{"event"'));
  assert.ok(
    events.some((l) => l.includes('52:54:00:10:00:01') && l.includes('ACK 10.10.0.11')),
    events.join('\n'),
  );
  assert.doesNotMatch(relayLog.join(''), /missing|without|drop/i);
});
