// Fuzzing the DHCP server (server and proxy mode): 100,000 random, truncated, bit-flipped and
// option-mangled packets through decode and both handlers directly, then the same corpus over real UDP
// to running servers in a network namespace; afterwards the servers must still answer and busybox
// udhcpc must get its reservation.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { validateSot } from '../../sot/validate';
import { BROADCAST_FLAG, decode, encode, MessageType } from '../../agent/dhcp/codec';
import { handleDhcp } from '../../agent/dhcp/handler';
import { leasesFromModel, mapBackend, type HostLease, type LeaseBackend } from '../../agent/dhcp/leases';
import { handleProxyDhcp, PXE_PORT } from '../../agent/dhcp/proxy';
import { createNetnsPair, netnsProblem } from '../../cli/lab/netns';
import { BUSYBOX, setMac, udhcpc } from '../helpers/dhcp-client';
import { opt, rawRequest, type RawHeader } from '../helpers/dhcp-packets';
import { sotMin } from '../helpers/sot';

const IN_CI = Boolean(process.env.CI) && process.env.CI !== 'false';
const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 32));
const PACKETS = 100_000;
const SERVER_IP = '10.10.0.5';
const CLIENT_IP = '10.10.0.77';
const PROXY_PORT = 1067;
const CORE2 = '52:54:00:10:00:02';
const agentDir = fileURLToPath(new URL('../../agent/dhcp/', import.meta.url));

/** A small deterministic PRNG (mulberry32), so that a failing run can be replayed with FUZZ_SEED. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** A request as firmware writes it, ended. */
const raw = (options: number[], header: RawHeader = {}) => rawRequest([...options, 255], header);

const UUID = [0, ...randomBytes(16)];
const IPXE = [
  ...opt(93, [0, 0]),
  ...opt(60, 'PXEClient:Arch:00000:UNDI:002001'),
  ...opt(77, 'iPXE'),
  ...opt(97, UUID),
];
const EDK2 = [
  ...opt(93, [0, 7]),
  ...opt(94, [1, 3, 0]),
  ...opt(60, 'PXEClient:Arch:00007:UNDI:003000'),
  ...opt(97, UUID),
];
const SERVER = [10, 10, 0, 5];
const RESERVED = [10, 10, 0, 11];

/** Valid packets of every kind the servers handle, the material every mutation starts from. */
const SEEDS = [
  raw([...opt(53, [1]), ...opt(57, [5, 192]), ...IPXE, ...opt(55, [1, 3, 6, 43, 60, 66, 67, 175])]),
  raw([...opt(53, [1]), ...EDK2], { flags: BROADCAST_FLAG }),
  raw([...opt(53, [3]), ...opt(54, SERVER), ...opt(50, RESERVED), ...IPXE]),
  raw([...opt(53, [3]), ...opt(50, [10, 10, 0, 99])]),
  raw([...opt(53, [3]), ...IPXE], { ciaddr: '10.10.0.11' }),
  raw([...opt(53, [8]), ...opt(55, [1, 3, 6])], { ciaddr: '10.10.0.11' }),
  raw([...opt(53, [7]), ...opt(54, SERVER)], { ciaddr: '10.10.0.11' }),
  raw([...opt(53, [4]), ...opt(50, RESERVED), ...opt(54, SERVER)]),
  raw([...opt(53, [1]), ...opt(82, [1, 4, 0, 0, 0, 1, 2, 6, 1, 2, 3, 4, 5, 6]), ...IPXE], {
    giaddr: '10.10.0.1',
  }),
  raw([...opt(53, [1]), ...opt(52, [3]), ...IPXE]),
  raw([...opt(53, [1]), ...opt(60, 'udhcp 1.35.0'), ...opt(61, [1, 0x52, 0x54, 0, 0x10, 0, 2])], {
    mac: CORE2,
  }),
  raw([...opt(53, [1]), ...IPXE], { mac: '52:54:00:99:99:99' }),
];

/** One mutated packet: random bytes, a truncated or bit-flipped seed, or mangled options. */
function mutate(rand: () => number): Buffer {
  const seed = SEEDS[Math.floor(rand() * SEEDS.length)] as Buffer;
  const byte = () => Math.floor(rand() * 256);
  switch (Math.floor(rand() * 6)) {
    case 0:
      return Buffer.from(Array.from({ length: Math.floor(rand() * 700) }, byte));
    case 1:
      return seed.subarray(0, Math.floor(rand() * seed.length));
    case 2: {
      const buf = Buffer.from(seed);
      for (let f = 1 + Math.floor(rand() * 8); f > 0; f--) {
        const at = Math.floor(rand() * buf.length);
        buf[at] = (buf[at] ?? 0) ^ (1 << Math.floor(rand() * 8));
      }
      return buf;
    }
    case 3: {
      // Flips only in the option area, where most parsing happens.
      const buf = Buffer.from(seed);
      for (let f = 1 + Math.floor(rand() * 4); f > 0; f--) {
        const at = 240 + Math.floor(rand() * (buf.length - 240));
        buf[at] = byte();
      }
      return buf;
    }
    case 4: {
      // Random options (any code, any length, sometimes lying about it), overload included.
      const extra: number[] = [];
      for (let n = Math.floor(rand() * 6); n > 0; n--) {
        const len = Math.floor(rand() * 40);
        extra.push(byte(), rand() < 0.1 ? byte() : len, ...Array.from({ length: len }, byte));
      }
      return Buffer.concat([seed.subarray(0, seed.length - 1), Buffer.from(extra), Buffer.from([255])]);
    }
    default: {
      // Header fields: hlen, htype, op, flags, addresses.
      const buf = Buffer.from(seed);
      for (let f = 1 + Math.floor(rand() * 3); f > 0; f--) buf[Math.floor(rand() * 44)] = byte();
      return buf;
    }
  }
}

function corpus(seed: number): Buffer[] {
  const rand = prng(seed);
  return Array.from({ length: PACKETS }, () => mutate(rand));
}

let backend: LeaseBackend;
let leases: HostLease[];

before(async () => {
  const { model, diagnostics } = await validateSot(sotMin);
  assert.ok(model, JSON.stringify(diagnostics));
  const map = leasesFromModel(model, 'lab1');
  backend = mapBackend(map);
  leases = [...map.values()];
});

test(`decode and both handlers: 100,000 mutated packets never throw (seed ${SEED})`, () => {
  const started = performance.now();
  const outcomes = new Map<string, number>();
  const count = (k: string) => outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
  const now = new Date(0);
  corpus(SEED).forEach((buf, i) => {
    try {
      const decoded = decode(buf);
      if (!decoded.ok) return count(decoded.error);
      const results = [
        handleDhcp(decoded.packet, { serverIp: SERVER_IP, backend, now }),
        ...[67, PXE_PORT].map((localPort) =>
          handleProxyDhcp(decoded.packet, {
            serverIp: SERVER_IP,
            backend,
            now,
            localPort,
            from: { address: CLIENT_IP, port: 68 },
          }),
        ),
      ];
      results.forEach((r, k) => {
        count(`${['server', 'proxy67', 'proxy4011'][k]}:${r.outcome}`);
        if (!r.reply) return;
        const again = decode(encode(r.reply.packet, r.reply.encode));
        assert.ok(again.ok, 'a reply we encode decodes');
        // ProxyDHCP never hands out an address.
        if (k > 0) assert.equal(again.packet.yiaddr, '0.0.0.0');
      });
    } catch (err) {
      assert.fail(
        `seed ${SEED}, packet ${i} (${buf.toString('hex')}): ${err instanceof Error ? err.stack : String(err)}`,
      );
    }
  });
  const ms = performance.now() - started;
  const summary = `seed ${SEED}: ${JSON.stringify(Object.fromEntries(outcomes))}`;
  assert.ok(ms < 60_000, `took ${ms} ms`);
  for (const key of [
    'server:offer',
    'server:ack',
    'server:nak',
    'proxy67:offer',
    'proxy4011:ack',
    'truncated',
    'option-overrun',
  ]) {
    assert.ok((outcomes.get(key) ?? 0) > 100, `${key} too rare: ${summary}`);
  }
});

// ---- The same corpus over UDP to running servers ----

/** A server-mode DHCP server on 67 and a proxy on 1067/4011; prints its counters for each stdin line. */
const SERVERS_SCRIPT = `
  const { startDhcpServer } = await import(${JSON.stringify(path.join(agentDir, 'server.ts'))});
  const { mapBackend } = await import(${JSON.stringify(path.join(agentDir, 'leases.ts'))});
  const backend = mapBackend(new Map(JSON.parse(process.env.H1_LEASES).map((l) => [l.mac, l])));
  const common = { address: '${SERVER_IP}', backend, events: { emit: () => {} }, log: () => {} };
  const server = await startDhcpServer(common);
  const proxy = await startDhcpServer({ ...common, mode: 'proxy', port: ${PROXY_PORT} });
  process.stdin.on('data', () => console.log(JSON.stringify({ server: server.counters, proxy: proxy.counters })));
  console.log('READY');`;

/** Sends the corpus file (u16 length + bytes each) to the three ports, paced; then a PXE REQUEST. */
const FUZZER_SCRIPT = `
  const dgram = await import('node:dgram');
  const { readFileSync } = await import('node:fs');
  const { decode } = await import(${JSON.stringify(path.join(agentDir, 'codec.ts'))});
  const file = readFileSync(process.argv[1]);
  const socket = dgram.createSocket('udp4');
  await new Promise((resolve) => socket.bind(0, '${CLIENT_IP}', resolve));
  const started = Date.now();
  const sent = { 67: 0, ${PROXY_PORT}: 0, ${PXE_PORT}: 0 };
  let at = 0;
  for (let i = 0; at < file.length; i++) {
    const len = file.readUInt16BE(at);
    const packet = file.subarray(at + 2, at + 2 + len);
    at += 2 + len;
    const port = i % 10 < 6 ? 67 : i % 10 < 8 ? ${PROXY_PORT} : ${PXE_PORT};
    await new Promise((resolve) => socket.send(packet, port, '${SERVER_IP}', resolve));
    sent[port]++;
    // Paced so the servers' receive buffers are not simply overrun (that would test the kernel).
    if (i % 50 === 49) await new Promise((r) => setTimeout(r, 5));
  }
  const ms = Date.now() - started;
  const request = Buffer.from(process.argv[2], 'hex');
  socket.on('message', (msg, from) => {
    const d = decode(msg);
    if (!d.ok || d.packet.xid !== request.readUInt32BE(4) || from.port !== ${PXE_PORT}) return;
    console.log(JSON.stringify({ sent, ms, ack: { type: d.packet.options.get(53)[0], file: d.packet.file, yiaddr: d.packet.yiaddr } }));
    process.exit(0);
  });
  const again = () => socket.send(request, ${PXE_PORT}, '${SERVER_IP}');
  again();
  setInterval(again, 500);
  setTimeout(() => { console.log(JSON.stringify({ sent, ms, ack: null })); process.exit(1); }, 10000);`;

test(
  `servers survive the corpus over UDP, then answer a PXE REQUEST and udhcpc (seed ${SEED})`,
  { timeout: 120_000 },
  async (t) => {
    const missing =
      (await netnsProblem()) ?? (BUSYBOX ? undefined : 'busybox not found (apt-get install busybox-static)');
    if (missing) {
      if (IN_CI) throw new Error(`${missing}; CI must provide it`);
      t.skip(missing);
      return;
    }
    const dir = await mkdtemp(path.join(tmpdir(), 'h1-fuzz-dhcp-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const corpusFile = path.join(dir, 'corpus.bin');
    await writeFile(
      corpusFile,
      Buffer.concat(corpus(SEED ^ 0x5eed).flatMap((p) => [Buffer.from([p.length >> 8, p.length & 0xff]), p])),
    );
    // h1-<id>-a: the servers; h1-<id>-b: the fuzzer and udhcpc.
    const net = await createNetnsPair({ tag: 'h1', a: [`${SERVER_IP}/24`] });
    t.after(() => net.close());
    await net.exec(net.b, 'ip', ['addr', 'add', `${CLIENT_IP}/24`, 'dev', net.ifB]);

    const servers = net.spawn(
      net.a,
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', SERVERS_SCRIPT],
      { env: { ...process.env, H1_LEASES: JSON.stringify(leases) } },
    );
    const out: string[] = [];
    let stderr = '';
    servers.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    servers.stdout?.on('data', (d: Buffer) => out.push(...d.toString().split('\n').filter(Boolean)));
    const wait = async (what: string, check: () => boolean) => {
      for (let i = 0; !check(); i++) {
        if (i > 300 || servers.exitCode !== null)
          assert.fail(`seed ${SEED}: ${what}; servers exited ${servers.exitCode}: ${stderr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    await wait('servers did not start', () => out.includes('READY'));

    const pxeRequest = raw([...opt(53, [3]), ...IPXE], { ciaddr: CLIENT_IP });
    pxeRequest.writeUInt32BE(0x0f0f0f0f, 4);
    const fuzzer = JSON.parse(
      await net
        .exec(
          net.b,
          process.execPath,
          [
            '--import',
            'tsx',
            '--input-type=module',
            '-e',
            FUZZER_SCRIPT,
            corpusFile,
            pxeRequest.toString('hex'),
          ],
          90_000,
        )
        .then(({ stdout }) => stdout)
        .catch((err: { stdout?: string; stderr?: string }) => {
          if (!err.stdout) assert.fail(`seed ${SEED}: fuzzer failed: ${err.stderr}`);
          return err.stdout;
        }),
    ) as {
      sent: Record<string, number>;
      ms: number;
      ack: { type: number; file: string; yiaddr: string } | null;
    };
    const sent = Object.values(fuzzer.sent ?? {}).reduce((x, y) => x + y, 0);
    t.diagnostic(`seed ${SEED}: ${sent} packets over UDP in ${fuzzer.ms} ms`);
    assert.equal(sent, PACKETS);
    assert.equal(servers.exitCode, null, `seed ${SEED}: servers died: ${stderr}`);
    // The proxy still answers on 4011 after the storm.
    assert.deepEqual(
      fuzzer.ack,
      { type: MessageType.Ack, file: 'http://10.10.0.5:8080/ipxe/52-54-00-10-00-01', yiaddr: '0.0.0.0' },
      `seed ${SEED}`,
    );

    // What the servers saw: most packets reached a handler or were counted as malformed (an idle machine:
    // ~90% for the server, which answers a third of them, ~98% for the proxy; the rest the kernel drops).
    servers.stdin?.write('\n');
    await wait('no counters', () => out.some((l) => l.startsWith('{')));
    const counters = JSON.parse(out.find((l) => l.startsWith('{')) ?? '{}') as Record<
      'server' | 'proxy',
      Record<string, number>
    >;
    const total = (c: Record<string, number>) =>
      Object.entries(c)
        .filter(([k]) => k !== 'send-error' && k !== 'send-dropped')
        .reduce((x, [, v]) => x + v, 0);
    t.diagnostic(`seed ${SEED}: ${JSON.stringify(counters)}`);
    assert.ok(
      total(counters.server) >= fuzzer.sent['67']! * 0.5,
      `seed ${SEED}: server counted ${total(counters.server)}`,
    );
    assert.ok(
      total(counters.proxy) >= (fuzzer.sent['1067']! + fuzzer.sent['4011']!) * 0.5,
      `seed ${SEED}: proxy counted ${total(counters.proxy)}`,
    );
    assert.ok(counters.server.malformed! > 1000 && counters.server.offer! > 100, `seed ${SEED}`);

    // A real client afterwards: busybox udhcpc gets core-02's reservation.
    await setMac(net, net.b, net.ifB, CORE2);
    const bound = await udhcpc(net, net.b, net.ifB, dir);
    assert.equal(bound.get('ip'), '10.10.0.12', `seed ${SEED}`);
    assert.equal(bound.get('serverid'), '10.10.0.5', `seed ${SEED}`);
    assert.equal(servers.exitCode, null, `seed ${SEED}: servers died: ${stderr}`);
  },
);
