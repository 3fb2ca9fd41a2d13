import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BROADCAST_FLAG, decode, encode, macOf, MessageType, type DhcpPacket } from '../../agent/dhcp/codec';
import {
  clientArch,
  decodeSubOptions,
  maxMessageSize,
  messageType,
  optionText,
  requestedOptions,
  userClasses,
} from '../../agent/dhcp/codec-options';
import { handleDhcp } from '../../agent/dhcp/handler';
import type { HostLease } from '../../agent/dhcp/leases';
import { classlessRoutes, domainSearch } from '../../agent/dhcp/options';
import { opt, rawRequest, type RawHeader } from '../helpers/dhcp-packets';

const MAC = '52:54:00:77:00:11';
const UUID = Buffer.from('8c1c2b4a5d6e4f708192a3b4c5d6e7f8', 'hex');

function macBytes(mac: string): Buffer {
  return Buffer.from(mac.replaceAll(':', ''), 'hex');
}

/** A request from MAC, its firmware 4 s into booting, `options` verbatim. */
const request = (options: number[], header: RawHeader = {}) =>
  rawRequest(options, { mac: MAC, secs: 4, ...header });

const IPXE_PRL = [
  1, 3, 6, 7, 12, 15, 17, 26, 43, 60, 66, 67, 119, 128, 129, 130, 131, 132, 133, 134, 135, 175, 203,
];

/** Captured in the virtual lab (docs/lab.md): QEMU's BIOS NIC ROM is iPXE; its first DISCOVER. */
function ipxeBiosDiscover(): Buffer {
  return request([
    ...opt(53, [MessageType.Discover]),
    ...opt(57, [0x05, 0xc0]),
    ...opt(93, [0, 0]),
    ...opt(94, [1, 2, 1]),
    ...opt(60, 'PXEClient:Arch:00000:UNDI:002001'),
    ...opt(77, 'iPXE'),
    ...opt(175, [177, 5, 1, 0x1a, 0xf4, 0x10, 0x00, 19, 1, 1, 235, 3, 1, 21, 1]),
    ...opt(61, [1, ...macBytes(MAC)]),
    ...opt(97, [0, ...UUID]),
    ...opt(55, IPXE_PRL),
    255,
  ]);
}

/** Captured in the virtual lab: EDK2's own PXE (OVMF), broadcast flag set, no 61/77/175. */
function edk2Discover(): Buffer {
  return request(
    [
      ...opt(53, [MessageType.Discover]),
      ...opt(57, [0x05, 0xc0]),
      ...opt(
        55,
        [
          1, 2, 3, 4, 5, 6, 12, 13, 15, 17, 18, 22, 23, 28, 40, 41, 42, 43, 50, 51, 54, 58, 59, 60, 66, 67,
          97, 128, 129, 130, 131, 132, 133, 134, 135,
        ],
      ),
      ...opt(97, [0, ...UUID]),
      ...opt(94, [1, 3, 0]),
      ...opt(93, [0, 7]),
      ...opt(60, 'PXEClient:Arch:00007:UNDI:003000'),
      255,
    ],
    { flags: BROADCAST_FLAG },
  );
}

function decoded(buf: Uint8Array): DhcpPacket {
  const result = decode(buf);
  assert.ok(result.ok, `decode failed: ${result.ok ? '' : result.error}`);
  return result.packet;
}

test('the iPXE BIOS DISCOVER captured in the lab decodes field by field', () => {
  const p = decoded(ipxeBiosDiscover());
  assert.equal(messageType(p), MessageType.Discover);
  assert.equal(macOf(p), MAC);
  assert.equal(p.xid, 0x1234abcd);
  assert.equal(clientArch(p), 0);
  assert.deepEqual(userClasses(p), ['iPXE']);
  assert.equal(optionText(p, 60), 'PXEClient:Arch:00000:UNDI:002001');
  assert.equal(maxMessageSize(p), 1472);
  assert.deepEqual(requestedOptions(p), IPXE_PRL);
  assert.deepEqual(Buffer.from(p.options.get(97) ?? []), Buffer.from([0, ...UUID]));
  const ipxe = decodeSubOptions(p.options.get(175) ?? new Uint8Array());
  assert.deepEqual([...(ipxe?.keys() ?? [])], [177, 19, 235]);
});

test('the EDK2 UEFI DISCOVER keeps its broadcast flag and arch 7', () => {
  const p = decoded(edk2Discover());
  assert.equal(p.flags & BROADCAST_FLAG, BROADCAST_FLAG);
  assert.equal(clientArch(p), 7);
  assert.equal(p.options.has(77), false);
  assert.deepEqual(userClasses(p), []);
});

test('decode and encode round-trip a packet, options in order', () => {
  const p = decoded(ipxeBiosDiscover());
  const again = decoded(encode(p, { maxSize: 1472 }));
  assert.deepEqual(again, p);
});

test('PAD options are skipped anywhere, a missing END is tolerated', () => {
  const p = decoded(request([0, 0, ...opt(53, [1]), 0, ...opt(12, 'pad'), 0, 0]));
  assert.equal(messageType(p), 1);
  assert.equal(optionText(p, 12), 'pad');
  assert.deepEqual([...p.options.keys()], [53, 12]);
});

test('a binary option with embedded NULs is kept whole', () => {
  const value = [0x00, 0x41, 0x00, 0x00, 0xff, 0x42];
  const p = decoded(request([...opt(53, [1]), ...opt(224, value), 255]));
  assert.deepEqual([...(p.options.get(224) ?? [])], value);
  assert.deepEqual([...(decoded(encode(p)).options.get(224) ?? [])], value);
});

test('option 82 relay information stays opaque and is concatenated across instances (RFC 3396)', () => {
  const p = decoded(request([...opt(53, [1]), ...opt(82, [1, 2, 0, 7]), ...opt(82, [2, 1, 9]), 255]));
  assert.deepEqual([...(p.options.get(82) ?? [])], [1, 2, 0, 7, 2, 1, 9]);
});

test('option overload (52) reads options from the file and sname fields', () => {
  const buf = request([...opt(53, [1]), ...opt(52, [3]), 255]);
  Buffer.from([...opt(12, 'in-file'), 255]).copy(buf, 108);
  Buffer.from([...opt(15, 'in.sname'), 255]).copy(buf, 44);
  const p = decoded(buf);
  assert.equal(optionText(p, 12), 'in-file');
  assert.equal(optionText(p, 15), 'in.sname');
  assert.equal(p.file, '');
  assert.equal(p.sname, '');
});

test('a value over 255 bytes is split on encode and joined on decode', () => {
  const p = decoded(request([...opt(53, [1]), 255]));
  const long = Buffer.alloc(600, 7);
  p.options.set(250, long);
  assert.deepEqual(Buffer.from(decoded(encode(p, { maxSize: 1500 })).options.get(250) ?? []), long);
});

test('encode honours option 55 order and the client maximum size', () => {
  const p = decoded(request([...opt(53, [2]), 255]));
  p.op = 2;
  p.options = new Map<number, Uint8Array>([
    [53, Uint8Array.of(2)],
    [200, new Uint8Array(250)],
    [12, Buffer.from('h')],
    [54, Uint8Array.of(10, 0, 0, 1)],
    [201, new Uint8Array(250)],
  ]);
  const out = encode(p, { maxSize: 576, requested: [12, 201] });
  assert.ok(out.length <= 576 - 28);
  assert.deepEqual([...decoded(out).options.keys()], [53, 54, 12, 201]);
});

test('malformed input is a typed error, never an exception', () => {
  const good = ipxeBiosDiscover();
  assert.deepEqual(decode(new Uint8Array()), { ok: false, error: 'truncated' });
  assert.equal(decode(good.subarray(0, 239)).ok, false);
  const badCookie = Buffer.from(good);
  badCookie[236] = 0;
  assert.deepEqual(decode(badCookie), { ok: false, error: 'bad-cookie', xid: 0x1234abcd });
  assert.deepEqual(decode(good.subarray(0, 250)), { ok: false, error: 'option-overrun', xid: 0x1234abcd });
  assert.deepEqual(decode(request(opt(53, [1, 1]))), { ok: false, error: 'bad-length', xid: 0x1234abcd });
  const badHlen = Buffer.from(good);
  badHlen[2] = 40;
  assert.deepEqual(decode(badHlen), { ok: false, error: 'bad-length', xid: 0x1234abcd });
});

test('RFC 3397 domain search compresses repeated suffixes', () => {
  const bytes = domainSearch(['eng.example.com', 'example.com']);
  // 3eng7example3com0 then a pointer to offset 4 ("example.com").
  assert.deepEqual(Buffer.from(bytes), Buffer.from('03656e67076578616d706c6503636f6d00c004', 'hex'));
});

test('RFC 3442 routes encode only the significant destination octets', () => {
  const bytes = classlessRoutes([
    { destination: '10.17.0.0/16', gateway: '10.0.0.1' },
    { destination: '0.0.0.0/0', gateway: '10.0.0.254' },
  ]);
  assert.deepEqual([...bytes], [16, 10, 17, 10, 0, 0, 1, 0, 10, 0, 0, 254]);
});

/** A small deterministic PRNG, so that a failing case can be replayed. */
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

test('100,000 random, truncated and bit-flipped packets: no throw, bounded time', () => {
  const lease: HostLease = {
    mac: MAC,
    ipv4: '10.77.0.11',
    subnet: {
      id: 'boot',
      cidr: '10.77.0.0/24',
      gateway: '10.77.0.1',
      dns: ['10.77.0.1'],
      ntp: [],
      domain_search: ['lab.example'],
      lease_time: 3600,
      options: [],
    },
    hostname: 'node-11',
    ipxeScriptUrl: 'http://10.77.0.1:8080/ipxe/52-54-00-77-00-11',
    tftpServer: '10.77.0.1',
    assetUrl: 'http://10.77.0.1:8080',
    armed: true,
  };
  const ctx = { serverIp: '10.77.0.1', backend: { lookupHost: () => lease }, now: new Date(0) };
  const seeds = [ipxeBiosDiscover(), edk2Discover()];
  const rand = prng(4);
  const started = performance.now();
  const outcomes = new Map<string, number>();
  for (let i = 0; i < 100_000; i++) {
    let buf: Buffer;
    const kind = i % 4;
    const seed = seeds[i % 2] ?? Buffer.alloc(0);
    if (kind === 0) {
      buf = Buffer.alloc(Math.floor(rand() * 600));
      for (let j = 0; j < buf.length; j++) buf[j] = Math.floor(rand() * 256);
    } else if (kind === 1) {
      buf = seed.subarray(0, Math.floor(rand() * seed.length));
    } else {
      buf = Buffer.from(seed);
      const flips = 1 + Math.floor(rand() * 8);
      for (let f = 0; f < flips; f++) {
        const at = Math.floor(rand() * buf.length);
        buf[at] = (buf[at] ?? 0) ^ (1 << Math.floor(rand() * 8));
      }
    }
    const result = decode(buf);
    let key: string = result.ok ? 'decoded' : result.error;
    if (result.ok) {
      const handled = handleDhcp(result.packet, ctx);
      key = handled.outcome;
      if (handled.reply) encode(handled.reply.packet, handled.reply.encode);
    }
    outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
  }
  const elapsed = performance.now() - started;
  assert.ok(elapsed < 60_000, `took ${elapsed} ms`);
  assert.ok((outcomes.get('offer') ?? 0) > 1000, JSON.stringify([...outcomes]));
  assert.ok((outcomes.get('truncated') ?? 0) > 1000, JSON.stringify([...outcomes]));
});
