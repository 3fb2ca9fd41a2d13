// Fuzzing the TFTP server: 100,000+ random, truncated, bit-flipped and option-mangled packets to its
// request port and to the ports of transfers in progress, over real UDP on 127.0.0.1; then real clients
// must still get correct files. The same corpus goes through the packet parsers directly first.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { errorText, parseRequest, TftpError } from '../../agent/tftp/packets';
import { resolveFile } from '../../agent/tftp/resolve-file';
import { startTftpServer, type TftpLog, type TftpServer } from '../../agent/tftp/server';

const run = promisify(execFile);
const IN_CI = Boolean(process.env.CI) && process.env.CI !== 'false';
const HOST = '127.0.0.1';
const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 32));
const REQUEST_PACKETS = 60_000;
const TRANSFERS = 2_000;
const PER_TRANSFER = 20;

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

const u16 = (n: number) => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
const z = (s: string) => Buffer.from(`${s}\0`, 'latin1');
const rrq = (file: string, mode: string, ...opts: string[]) =>
  Buffer.concat([u16(1), z(file), z(mode), ...opts.map(z)]);

/** Valid packets of every kind, the material every mutation starts from. */
const REQUEST_SEEDS = [
  rrq('big.bin', 'octet', 'blksize', '1468', 'tsize', '0', 'windowsize', '4'),
  rrq('small.bin', 'octet'),
  rrq('small.bin', 'netascii', 'timeout', '3'),
  rrq('sub/../small.bin', 'octet', 'blksize', '8'),
  rrq('missing.bin', 'octet', 'rollover', '0'),
  rrq('big.bin', 'octet', 'custom', 'x', 'windowsize', '65535'),
  Buffer.concat([u16(2), z('upload.bin'), z('octet'), z('tsize'), z('1000')]),
];
const TRANSFER_SEEDS = [
  Buffer.concat([u16(4), u16(0)]),
  Buffer.concat([u16(4), u16(1)]),
  Buffer.concat([u16(4), u16(2)]),
  Buffer.concat([u16(5), u16(0), z('client gave up')]),
  Buffer.concat([u16(5), u16(3)]),
  Buffer.concat([u16(3), u16(1), randomBytes(16)]),
  Buffer.concat([u16(6), z('blksize'), z('512')]),
];
const ODD_VALUES = [
  '-1',
  '0',
  '7',
  '65465',
  '99999999999',
  '1e3',
  '1.5',
  '',
  'NaN',
  'Infinity',
  '0x10',
  ' 8',
  '\u00e9',
];

/** One mutated packet: random bytes, a truncated or bit-flipped seed, or a seed with a mangled field. */
function mutate(rand: () => number, seeds: readonly Buffer[]): Buffer {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const seed = pick(seeds);
  switch (Math.floor(rand() * 6)) {
    case 0: {
      const buf = Buffer.alloc(Math.floor(rand() * 600));
      for (let i = 0; i < buf.length; i++) buf[i] = Math.floor(rand() * 256);
      return buf;
    }
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
      // Replace one NUL-separated field (an option name or value, the mode, the file).
      const fields = seed.subarray(2).toString('latin1').split('\0');
      const i = Math.floor(rand() * fields.length);
      fields[i] = pick(
        ODD_VALUES.concat([
          'blksize',
          'tsize',
          'windowsize',
          'rollover',
          '..',
          '/etc/passwd',
          'a'.repeat(600),
        ]),
      );
      return Buffer.concat([seed.subarray(0, 2), Buffer.from(fields.join('\0'), 'latin1')]);
    }
    case 4: {
      // Insert or delete bytes (shifts every later field).
      const at = Math.floor(rand() * (seed.length + 1));
      if (rand() < 0.5)
        return Buffer.concat([seed.subarray(0, at), seed.subarray(at + 1 + Math.floor(rand() * 4))]);
      const junk = Buffer.from(
        Array.from({ length: 1 + Math.floor(rand() * 8) }, () => Math.floor(rand() * 256)),
      );
      return Buffer.concat([seed.subarray(0, at), junk, seed.subarray(at)]);
    }
    default: {
      // A valid-looking packet with a random opcode and block number.
      const buf = Buffer.from(seed);
      buf.writeUInt16BE(Math.floor(rand() * 8), 0);
      if (buf.length >= 4) buf.writeUInt16BE(Math.floor(rand() * 65536), 2);
      return buf;
    }
  }
}

let dir: string;
let root: string;
let server: TftpServer;
let port: number;
let small: Buffer;
let big: Buffer;
const logs: TftpLog[] = [];

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'h1-fuzz-tftp-'));
  root = await realpath(await mkdtemp(path.join(dir, 'root-')));
  await mkdir(path.join(root, 'sub'));
  small = randomBytes(1000);
  big = randomBytes(2 * 1024 * 1024 + 77);
  await writeFile(path.join(root, 'small.bin'), small);
  await writeFile(path.join(root, 'big.bin'), big);
  const probe = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => probe.bind(0, HOST, resolve));
  port = probe.address().port;
  await new Promise<void>((resolve) => probe.close(resolve));
  server = await startTftpServer({ host: HOST, port, root, log: (entry) => logs.push(entry) });
});

after(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

/** Whether a parser threw a protocol error (answered with an error packet), not a crash. */
const isProtocolError = (err: unknown): boolean => err instanceof TftpError && typeof err.code === 'number';

test(`parsers: 100,000 mutated packets throw only protocol errors; filenames stay inside the root (seed ${SEED})`, async () => {
  const rand = prng(SEED);
  const files = new Set<string>();
  const outcomes = new Map<string, number>();
  const count = (k: string) => outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
  for (let i = 0; i < 100_000; i++) {
    const buf = mutate(rand, i % 2 ? REQUEST_SEEDS : TRANSFER_SEEDS);
    const op = buf.length >= 2 ? buf.readUInt16BE(0) : -1;
    // The same dispatch the server's sockets make: requests to the parser, ERROR text to the log.
    if (op === 5) {
      assert.equal(typeof errorText(buf), 'string');
      count('dropped');
      continue;
    }
    if (op !== 1 && op !== 2) {
      count('dropped');
      continue;
    }
    try {
      files.add(parseRequest(buf).file);
      count('parsed');
    } catch (err) {
      assert.ok(isProtocolError(err), `seed ${SEED}, packet ${i} (${buf.toString('hex')}): ${String(err)}`);
      count('protocol-error');
    }
  }
  assert.ok((outcomes.get('parsed') ?? 0) > 10_000, `seed ${SEED}: ${JSON.stringify([...outcomes])}`);
  assert.ok((outcomes.get('protocol-error') ?? 0) > 1_000, `seed ${SEED}: ${JSON.stringify([...outcomes])}`);
  for (const file of files) {
    const found = await resolveFile(root, file);
    if (found.ok) assert.ok(found.path.startsWith(root + path.sep), `seed ${SEED}: ${file} -> ${found.path}`);
  }
});

interface Sink {
  socket: dgram.Socket;
  /** The source port of the first packet from the server, once one came. */
  first(ms: number): Promise<number | undefined>;
}

async function sink(): Promise<Sink> {
  const socket = dgram.createSocket('udp4');
  let resolveFirst: ((port: number) => void) | undefined;
  let firstPort: number | undefined;
  socket.on('message', (_msg, rinfo) => {
    if (firstPort === undefined) {
      firstPort = rinfo.port;
      resolveFirst?.(rinfo.port);
    }
  });
  await new Promise<void>((resolve) => socket.bind(0, HOST, resolve));
  return {
    socket,
    first: (ms) =>
      firstPort !== undefined
        ? Promise.resolve(firstPort)
        : new Promise((resolve) => {
            resolveFirst = resolve;
            setTimeout(() => resolve(undefined), ms);
          }),
  };
}

const send = (socket: dgram.Socket, buf: Buffer, to: number) =>
  new Promise<void>((resolve) => socket.send(buf, to, HOST, () => resolve()));
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

test(
  `server: 100,000+ fuzzed packets to the request port and live transfers, then real clients (seed ${SEED})`,
  { timeout: 120_000 },
  async (t) => {
    const rand = prng(SEED ^ 0x5eed);
    const started = performance.now();
    let sent = 0;
    const pool = await Promise.all(Array.from({ length: 16 }, () => sink()));
    t.after(() => pool.forEach((s) => s.socket.close()));

    // 1. The request port: every packet from one of 16 source ports.
    for (let i = 0; i < REQUEST_PACKETS; i++) {
      await send((pool[i % pool.length] as Sink).socket, mutate(rand, REQUEST_SEEDS), port);
      sent++;
      // Paced so the server's receive buffer is not simply overrun (that would test the kernel).
      if (i % 200 === 199) await pause(2);
    }

    // 2. Transfers in progress: start one, then hit its port with mutated packets from the client's own
    // port (the transfer's TID) and from a stranger.
    let live = 0;
    for (let batch = 0; batch < TRANSFERS; batch += 50) {
      await Promise.all(
        Array.from({ length: 50 }, async () => {
          const client = await sink();
          const stranger = (pool[Math.floor(rand() * pool.length)] as Sink).socket;
          try {
            await send(
              client.socket,
              rand() < 0.5 ? (REQUEST_SEEDS[0] as Buffer) : rrq('big.bin', 'octet'),
              port,
            );
            sent++;
            const tid = await client.first(2000);
            if (tid === undefined) return;
            live++;
            for (let k = 0; k < PER_TRANSFER; k++) {
              await send(rand() < 0.8 ? client.socket : stranger, mutate(rand, TRANSFER_SEEDS), tid);
              sent++;
            }
          } finally {
            client.socket.close();
          }
        }),
      );
    }
    const seconds = (performance.now() - started) / 1000;
    t.diagnostic(
      `seed ${SEED}: ${sent} packets in ${seconds.toFixed(1)} s, ${live} transfers hit while live`,
    );
    assert.ok(sent >= 100_000, `only ${sent} packets sent`);
    assert.ok(live > TRANSFERS / 2, `seed ${SEED}: only ${live} of ${TRANSFERS} transfers started`);
    assert.equal(logs.filter((l) => l.msg.startsWith('request handler:')).length, 0, `seed ${SEED}`);
    // Client-chosen ERROR texts reach the log escaped: no terminal escapes or fake log lines.
    // eslint-disable-next-line no-control-regex
    const raw = logs.filter((l) => /[\x00-\x1f\x7f-\x9f]/.test(l.msg));
    assert.deepEqual(raw, [], `seed ${SEED}`);
    assert.ok(
      logs.some((l) => l.msg.startsWith('transfer failed: ')),
      `seed ${SEED}: no transfer failed`,
    );

    // 3. The server still answers, with correct bytes, to tftp-hpa and curl.
    const clients = [
      ['/usr/bin/tftp', 'tftp-hpa'],
      ['/usr/bin/curl', 'curl'],
    ] as const;
    for (const [bin, pkg] of clients) {
      if (existsSync(bin)) continue;
      if (IN_CI) assert.fail(`${bin} missing; CI must provide ${pkg}`);
      t.skip(`${bin} missing (apt-get install ${pkg})`);
      return;
    }
    const hpa = path.join(dir, 'hpa-big.bin');
    await run('/usr/bin/tftp', [HOST, String(port), '-m', 'binary', '-c', 'get', 'big.bin', hpa], {
      timeout: 60_000,
    });
    assert.ok((await readFile(hpa)).equals(big), `seed ${SEED}: tftp-hpa got a different big.bin`);
    const viaCurl = path.join(dir, 'curl-small.bin');
    await run(
      '/usr/bin/curl',
      ['-sS', '--tftp-blksize', '1468', '-o', viaCurl, `tftp://${HOST}:${port}/small.bin`],
      {
        timeout: 30_000,
      },
    );
    assert.ok((await readFile(viaCurl)).equals(small), `seed ${SEED}: curl got a different small.bin`);
  },
);
