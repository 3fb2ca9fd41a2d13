// ProxyDHCP: the pure handler, then a real PXE client (QEMU's iPXE ROM) getting its address from
// dnsmasq and its boot script URL from our proxy, in network namespaces created by the test.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { before, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { validateSot } from '../../sot/validate';
import { BROADCAST_FLAG, decode, encode, MessageType, type DhcpPacket } from '../../agent/dhcp/codec';
import { decodeSubOptions, messageType, optionIp, optionText } from '../../agent/dhcp/codec-options';
import type { HandlerResult } from '../../agent/dhcp/handler';
import { leasesFromModel, mapBackend, type HostLease, type LeaseBackend } from '../../agent/dhcp/leases';
import { handleProxyDhcp, PXE_PORT, type ProxyContext } from '../../agent/dhcp/proxy';
import { startDhcpServer } from '../../agent/dhcp/server';
import { dhcpRequest } from '../helpers/dhcp-packets';
import {
  addAddress,
  addBridge,
  addBroadcastRoute,
  addVeth,
  createNamespaces,
  ip,
  linkUp,
  netnsProblem,
  type Namespaces,
} from '../../cli/lab/netns';
import { sotMin } from '../helpers/sot';

const IN_CI = Boolean(process.env.CI) && process.env.CI !== 'false';
const SERVER = '10.10.0.5';
const CORE1 = '52:54:00:10:00:01';
const UUID = [...randomBytes(16)];
let backend: LeaseBackend;

before(async () => {
  const { model, diagnostics } = await validateSot(sotMin);
  assert.ok(model, JSON.stringify(diagnostics));
  backend = mapBackend(leasesFromModel(model, 'lab1'));
});

function ctx(port: number, from = { address: '0.0.0.0', port: 68 }): ProxyContext {
  return { serverIp: SERVER, backend, now: new Date('2026-01-02T03:04:05Z'), localPort: port, from };
}

function reply(result: HandlerResult): DhcpPacket {
  assert.ok(result.reply, `no reply: ${JSON.stringify(result.log)}`);
  const decoded = decode(encode(result.reply.packet, result.reply.encode));
  assert.ok(decoded.ok);
  return decoded.packet;
}

const BIOS_PXE: [number, number[] | string][] = [
  [93, [0, 0]],
  [60, 'PXEClient:Arch:00000:UNDI:002001'],
  [97, [0, ...UUID]],
];
const UEFI_PXE: [number, number[] | string][] = [
  [93, [0, 7]],
  [60, 'PXEClient:Arch:00007:UNDI:003000'],
  [97, [0, ...UUID]],
];
const IPXE: [number, number[] | string][] = [...BIOS_PXE, [77, 'iPXE']];

test('proxy: a PXE DISCOVER from a known MAC gets an OFFER with a boot file and no address', () => {
  const result = handleProxyDhcp(
    dhcpRequest({ type: MessageType.Discover, options: BIOS_PXE, flags: BROADCAST_FLAG }),
    ctx(67),
  );
  const offer = reply(result);
  assert.equal(result.outcome, 'offer');
  assert.equal(messageType(offer), MessageType.Offer);
  assert.equal(offer.yiaddr, '0.0.0.0');
  assert.equal(offer.siaddr, SERVER);
  assert.equal(offer.file, 'undionly.kpxe');
  assert.equal(optionText(offer, 67), 'undionly.kpxe');
  assert.equal(optionText(offer, 60), 'PXEClient');
  assert.equal(optionIp(offer, 54), SERVER);
  assert.deepEqual([...(offer.options.get(97) ?? [])], [0, ...UUID]);
  assert.equal(decodeSubOptions(offer.options.get(43) ?? new Uint8Array())?.get(6)?.[0], 8);
  assert.equal(offer.flags & BROADCAST_FLAG, BROADCAST_FLAG);
  // Nothing that belongs to the site's DHCP server.
  for (const code of [1, 3, 6, 51, 58, 59, 175])
    assert.equal(offer.options.has(code), false, `option ${code}`);
  assert.deepEqual(result.reply?.to, { address: '255.255.255.255', port: 68 });
  assert.equal(result.event?.mac, CORE1);
  assert.match(result.event?.detail ?? '', /proxy DISCOVER -> OFFER undionly\.kpxe/);
});

test('proxy: the boot file follows the architecture; iPXE gets its HTTP script URL', () => {
  const uefi = reply(
    handleProxyDhcp(dhcpRequest({ type: MessageType.Discover, options: UEFI_PXE }), ctx(67)),
  );
  assert.equal(optionText(uefi, 67), 'ipxe.efi');
  const ipxe = reply(handleProxyDhcp(dhcpRequest({ type: MessageType.Discover, options: IPXE }), ctx(67)));
  assert.equal(optionText(ipxe, 67), 'http://10.10.0.5:8080/ipxe/52-54-00-10-00-01');
  assert.equal(optionText(ipxe, 60), 'PXEClient');
  // "no-pxedhcp" would make iPXE skip the very ProxyDHCP exchange this is.
  assert.equal(ipxe.options.has(175), false);
});

test('proxy: a REQUEST on port 4011 gets an ACK back where it came from', () => {
  const from = { address: '10.10.0.123', port: 68 };
  const result = handleProxyDhcp(
    dhcpRequest({
      type: MessageType.Request,
      options: [...IPXE, [54, [10, 10, 0, 5]]],
      ciaddr: '10.10.0.123',
    }),
    ctx(PXE_PORT, from),
  );
  const ack = reply(result);
  assert.equal(result.outcome, 'ack');
  assert.equal(messageType(ack), MessageType.Ack);
  assert.equal(ack.yiaddr, '0.0.0.0');
  assert.equal(ack.ciaddr, '10.10.0.123');
  assert.equal(optionText(ack, 67), 'http://10.10.0.5:8080/ipxe/52-54-00-10-00-01');
  assert.deepEqual(result.reply?.to, from);
});

test('proxy: never answers what is not its business', () => {
  const cases: [string, DhcpPacket, number, string][] = [
    [
      'plain client',
      dhcpRequest({ type: MessageType.Discover, options: [[60, 'udhcp 1.35.0']] }),
      67,
      'not-pxe',
    ],
    ['no option 60', dhcpRequest({ type: MessageType.Discover, options: [[93, [0, 0]]] }), 67, 'not-pxe'],
    [
      'unknown MAC',
      dhcpRequest({ type: MessageType.Discover, options: BIOS_PXE, mac: '52:54:00:99:99:99' }),
      67,
      'unknown-mac',
    ],
    [
      'REQUEST on 67 (for the DHCP server)',
      dhcpRequest({ type: MessageType.Request, options: BIOS_PXE }),
      67,
      'ignored',
    ],
    ['DISCOVER on 4011', dhcpRequest({ type: MessageType.Discover, options: BIOS_PXE }), PXE_PORT, 'ignored'],
    ['RELEASE', dhcpRequest({ type: MessageType.Release, options: BIOS_PXE }), 67, 'ignored'],
    ['INFORM', dhcpRequest({ type: MessageType.Inform, options: BIOS_PXE }), PXE_PORT, 'ignored'],
  ];
  for (const [name, packet, port, outcome] of cases) {
    const result = handleProxyDhcp(packet, ctx(port));
    assert.equal(result.reply, undefined, name);
    assert.equal(result.event, undefined, name);
    assert.equal(result.outcome, outcome, name);
  }
  const reply = handleProxyDhcp(
    { ...dhcpRequest({ type: MessageType.Discover, options: BIOS_PXE }), op: 2 },
    ctx(67),
  );
  assert.equal(reply.outcome, 'ignored');
});

test('proxy: a relayed PXE DISCOVER is answered to the relay', () => {
  const result = handleProxyDhcp(
    dhcpRequest({ type: MessageType.Discover, options: BIOS_PXE, giaddr: '10.10.0.1' }),
    ctx(67),
  );
  assert.deepEqual(result.reply?.to, { address: '10.10.0.1', port: 67 });
  assert.equal(reply(result).giaddr, '10.10.0.1');
});

test('server mode with proxyPort also answers PXE REQUESTs on that port (EDK2 asks there)', async (t) => {
  const server = await startDhcpServer({
    address: SERVER,
    bindAddress: '127.0.0.1',
    port: 0,
    proxyPort: 0,
    backend,
    events: { emit: () => {} },
    log: () => {},
  });
  t.after(() => server.close());
  assert.ok(server.proxyPort);
  const socket = dgram.createSocket('udp4');
  t.after(() => socket.close());
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const answer = new Promise<Buffer>((resolve) => socket.once('message', resolve));
  socket.send(
    encode(dhcpRequest({ type: MessageType.Request, options: UEFI_PXE, ciaddr: '127.0.0.1' })),
    server.proxyPort,
    '127.0.0.1',
  );
  const decoded = decode(await answer);
  assert.ok(decoded.ok);
  assert.equal(messageType(decoded.packet), MessageType.Ack);
  assert.equal(decoded.packet.file, 'ipxe.efi');
  assert.equal(decoded.packet.yiaddr, '0.0.0.0');
  assert.equal(server.counters.ack, 1);
});

// ---- A real PXE client beside dnsmasq ----

const QEMU = '/usr/bin/qemu-system-x86_64';
const DNSMASQ = '/usr/sbin/dnsmasq';
const AGENT_IP = '10.78.0.1';
const DNSMASQ_IP = '10.78.0.2';
const VM_MAC = '52:54:00:78:00:11';
const agentDir = fileURLToPath(new URL('../../agent/dhcp/', import.meta.url));

async function missingTools(): Promise<string | undefined> {
  const netns = await netnsProblem();
  if (netns) return netns;
  for (const [file, pkg] of [
    [QEMU, 'qemu-system-x86'],
    [DNSMASQ, 'dnsmasq-base'],
    ['/usr/lib/ipxe/qemu/efi-virtio.rom', 'ipxe-qemu'],
  ] as const) {
    if (!existsSync(file)) return `${file} not found (apt-get install ${pkg})`;
  }
  return undefined;
}

interface Lab extends Namespaces {
  agent: string;
  dhcp: string;
  lab: string;
  tap: string;
}

/**
 * Three namespaces: `lab` holds a bridge with the VM's tap, `agent` (our proxy and HTTP server) and
 * `dhcp` (dnsmasq) hang off it by veths. All `h1-` prefixed, all deleted after the test.
 */
async function createLab(t: TestContext): Promise<Lab> {
  const id = randomBytes(3).toString('hex');
  const [agent, dhcp, lab] = ['agent', 'dhcp', 'lab'].map((n) => `h1-${id}-${n}`) as [string, string, string];
  const spaces = await createNamespaces([agent, dhcp, lab]);
  t.after(() => spaces.close());
  const br = `h1br${id}`;
  const tap = `h1tap${id}`;
  await addBridge(lab, br);
  await linkUp(lab, br);
  await ip(['-n', lab, 'tuntap', 'add', 'dev', tap, 'mode', 'tap']);
  await ip(['-n', lab, 'link', 'set', tap, 'master', br, 'up']);
  for (const [ns, addr, tag] of [
    [agent, AGENT_IP, 'a'],
    [dhcp, DNSMASQ_IP, 'd'],
  ] as const) {
    const inside = `h1${tag}${id}`;
    const onBridge = `h1${tag}${id}b`;
    await addVeth(lab, onBridge, ns, inside);
    await ip(['-n', lab, 'link', 'set', onBridge, 'master', br, 'up']);
    await addAddress(ns, inside, `${addr}/24`);
    await linkUp(ns, inside);
    await addBroadcastRoute(ns, inside);
  }
  return { ...spaces, agent, dhcp, lab, tap };
}

/** Our proxy on 67/4011 and an HTTP server recording requests, in one process in the agent namespace. */
const AGENT_SCRIPT = `
  const http = await import('node:http');
  const { startDhcpServer } = await import(${JSON.stringify(path.join(agentDir, 'server.ts'))});
  const { mapBackend } = await import(${JSON.stringify(path.join(agentDir, 'leases.ts'))});
  const leases = new Map(JSON.parse(process.env.H1_LEASES).map((l) => [l.mac, l]));
  const out = (o) => console.log(JSON.stringify(o));
  const server = await startDhcpServer({
    mode: 'proxy',
    address: '${AGENT_IP}',
    backend: mapBackend(leases),
    events: { emit: (event) => out({ event }) },
    log: (log) => out({ log }),
  });
  http.createServer((req, res) => {
    out({ http: { method: req.method, url: req.url, from: req.socket.remoteAddress } });
    res.end('#!ipxe\\necho vaquero proxy test\\n');
  }).listen(8080, '${AGENT_IP}', () => out({ ready: server.proxyPort }));
  setInterval(() => out({ counters: server.counters }), 1000);`;

function lines(child: ChildProcess, sink: string[]): void {
  let buffered = '';
  const onData = (d: Buffer) => {
    buffered += d.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    sink.push(...parts);
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
}

async function waitFor(what: string, check: () => boolean, ms: number, diag: () => string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}\n${diag()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test(
  'QEMU iPXE gets its address from dnsmasq and its boot script from our proxy',
  { timeout: 180_000 },
  async (t) => {
    const missing = await missingTools();
    if (missing) {
      if (IN_CI) throw new Error(`${missing}; CI must provide it`);
      t.skip(missing);
      return;
    }
    const lab = await createLab(t);
    const dir = await mkdtemp(path.join(tmpdir(), 'h1-proxy-'));
    t.after(() => rm(dir, { recursive: true, force: true }));

    const dnsmasqOut: string[] = [];
    const dnsmasq = lab.spawn(lab.dhcp, DNSMASQ, [
      '--no-daemon',
      '--conf-file=/dev/null',
      '--port=0',
      '--user=root',
      '--pid-file=',
      '--log-dhcp',
      '--log-facility=-',
      `--dhcp-leasefile=${path.join(dir, 'dnsmasq.leases')}`,
      '--dhcp-range=10.78.0.100,10.78.0.150,255.255.255.0,1h',
    ]);
    lines(dnsmasq, dnsmasqOut);

    const lease: HostLease = {
      mac: VM_MAC,
      ipv4: '10.78.0.11', // the proxy never hands it out: dnsmasq's pool is .100-.150
      subnet: {
        id: 'boot',
        cidr: '10.78.0.0/24',
        dns: [],
        ntp: [],
        domain_search: [],
        lease_time: 3600,
        options: [],
      },
      hostname: 'vm-11',
      ipxeScriptUrl: `http://${AGENT_IP}:8080/ipxe/52-54-00-78-00-11`,
      tftpServer: AGENT_IP,
      assetUrl: `http://${AGENT_IP}:8080`,
      armed: true,
    };
    const agentOut: string[] = [];
    const agent = lab.spawn(
      lab.agent,
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', AGENT_SCRIPT],
      { env: { ...process.env, H1_LEASES: JSON.stringify([lease]) } },
    );
    lines(agent, agentOut);
    const diag = () =>
      [
        '-- agent',
        ...agentOut.filter((l) => !l.includes('"counters"')),
        agentOut.filter((l) => l.includes('"counters"')).pop() ?? '',
        '-- dnsmasq',
        ...dnsmasqOut,
      ].join('\n');
    await waitFor('the agent', () => agentOut.some((l) => l.includes('"ready"')), 30_000, diag);

    const qemu = lab.spawn(lab.lab, QEMU, [
      ...['-accel', 'tcg', '-m', '128', '-smp', '1', '-nographic', '-nodefaults', '-display', 'none'],
      ...[
        '-serial',
        `file:${path.join(dir, 'vm.log')}`,
        '-boot',
        'n',
        '-uuid',
        '7d0c3f6e-7c1a-4b7e-9a54-1f2d3c4b5a69',
      ],
      ...['-netdev', `tap,id=n0,ifname=${lab.tap},script=no,downscript=no`],
      ...['-device', `virtio-net-pci,netdev=n0,mac=${VM_MAC}`],
    ]);
    const qemuOut: string[] = [];
    lines(qemu, qemuOut);
    t.after(() => {
      if (qemu.exitCode === null) qemu.kill('SIGKILL');
    });

    const scriptGet = () =>
      agentOut.find((l) => l.includes('"http"') && l.includes('/ipxe/52-54-00-78-00-11'));
    await waitFor(
      'the boot script GET',
      () => scriptGet() !== undefined,
      120_000,
      () => `${diag()}\n-- qemu\n${qemuOut.join('\n')}`,
    );
    const get = JSON.parse(scriptGet() ?? '{}') as { http: { method: string; from: string } };
    assert.equal(get.http.method, 'GET');
    // The VM's address is from dnsmasq's pool, not the reservation the proxy knows.
    const last = Number(
      get.http.from
        .replace(/^::ffff:/, '')
        .split('.')
        .pop(),
    );
    assert.ok(last >= 100 && last <= 150, `address ${get.http.from} is not from dnsmasq`);
    assert.ok(
      dnsmasqOut.some((l) => l.includes('DHCPACK') && l.includes(VM_MAC)),
      diag(),
    );
    const events = agentOut.filter((l) => l.includes('"event"'));
    assert.ok(
      events.some((l) => l.includes('proxy DISCOVER -> OFFER http://')),
      diag(),
    );
    // The proxy gave out no address: nothing in its replies but boot information (checked above), and
    // the leases it saw were never offered.
    assert.ok(!dnsmasqOut.some((l) => l.includes('10.78.0.11 ')), diag());

    // iPXE boots from the port-67 offer alone; a PXE ROM asks the boot server on port 4011 as well.
    const { stdout } = await lab.exec(lab.dhcp, process.execPath, [
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      PXE_REQUEST_SCRIPT,
    ]);
    const ack = JSON.parse(stdout) as Record<string, unknown>;
    assert.deepEqual(ack, {
      from: `${AGENT_IP}:${PXE_PORT}`,
      type: MessageType.Ack,
      yiaddr: '0.0.0.0',
      file: 'undionly.kpxe',
      vendorClass: 'PXEClient',
    });
  },
);

/** A PXE ROM's boot server REQUEST to port 4011 of the proxy, from dnsmasq's namespace. */
const PXE_REQUEST_SCRIPT = `
  const dgram = await import('node:dgram');
  const { decode, encode } = await import(${JSON.stringify(path.join(agentDir, 'codec.ts'))});
  const socket = dgram.createSocket('udp4');
  await new Promise((resolve) => socket.bind(0, '${DNSMASQ_IP}', resolve));
  const chaddr = new Uint8Array(16);
  chaddr.set(Buffer.from('${VM_MAC.replaceAll(':', '')}', 'hex'));
  const request = encode({
    op: 1, htype: 1, hlen: 6, hops: 0, xid: 0x4011, secs: 0, flags: 0, ciaddr: '${DNSMASQ_IP}', yiaddr: '0.0.0.0',
    siaddr: '0.0.0.0', giaddr: '0.0.0.0', chaddr, sname: '', file: '', options: new Map([
      [53, Uint8Array.of(3)], [93, Uint8Array.of(0, 0)], [60, Buffer.from('PXEClient:Arch:00000:UNDI:002001')],
    ]),
  });
  socket.on('message', (msg, from) => {
    const d = decode(msg);
    if (!d.ok || d.packet.xid !== 0x4011) return;
    const { yiaddr, file, options } = d.packet;
    console.log(JSON.stringify({ from: from.address + ':' + from.port, type: options.get(53)[0], yiaddr, file,
      vendorClass: Buffer.from(options.get(60)).toString() }));
    process.exit(0);
  });
  setInterval(() => socket.send(request, ${PXE_PORT}, '${AGENT_IP}'), 500);
  socket.send(request, ${PXE_PORT}, '${AGENT_IP}');
  setTimeout(() => process.exit(1), 10000);`;
