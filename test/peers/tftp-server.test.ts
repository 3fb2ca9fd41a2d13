// Our read-only TFTP server against real clients (tftp-hpa, atftp, curl) on 127.0.0.1, then bad
// packets to the server and transfer ports; then the same server with its transfers in worker threads.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { startTftpServer, type TftpLog, type TftpServer } from '../../agent/tftp/server';
import type { BootEvent } from '../../schemas/rollout';

const IN_CI = Boolean(process.env.CI) && process.env.CI !== 'false';
const HOST = '127.0.0.1';
const CLIENTS = { tftp: '/usr/bin/tftp', atftp: '/usr/bin/atftp', curl: '/usr/bin/curl' };

interface Run {
  code: number;
  out: string;
}

function run(cmd: string, args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, out: `${stdout}${stderr}` });
    });
  });
}

function needs(t: TestContext, client: keyof typeof CLIENTS): boolean {
  if (existsSync(CLIENTS[client])) return true;
  const why = `${CLIENTS[client]} missing (apt-get install ${client === 'tftp' ? 'tftp-hpa' : client})`;
  if (IN_CI) assert.fail(why);
  t.skip(why);
  return false;
}

async function freePort(): Promise<number> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, HOST, resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(resolve));
  return port;
}

interface Reply {
  msg: Buffer;
  port: number;
}

/** A raw UDP socket that records every packet it receives. */
async function rawSocket(): Promise<{ socket: dgram.Socket; next: (ms?: number) => Promise<Reply> }> {
  const socket = dgram.createSocket('udp4');
  const queue: Reply[] = [];
  const waiters: ((r: Reply) => void)[] = [];
  socket.on('message', (msg, rinfo) => {
    const reply = { msg, port: rinfo.port };
    const waiter = waiters.shift();
    if (waiter) waiter(reply);
    else queue.push(reply);
  });
  await new Promise<void>((resolve) => socket.bind(0, HOST, resolve));
  const next = (ms = 3000): Promise<Reply> => {
    const queued = queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no reply')), ms);
      waiters.push((r) => {
        clearTimeout(timer);
        resolve(r);
      });
    });
  };
  return { socket, next };
}

const request = (opcode: 1 | 2, file: string): Buffer =>
  Buffer.concat([Buffer.from([0, opcode]), Buffer.from(`${file}\0octet\0`)]);

/** The error code of an ERROR packet, or undefined for anything else. */
const errorCode = (msg: Buffer): number | undefined =>
  msg.length >= 4 && msg.readUInt16BE(0) === 5 ? msg.readUInt16BE(2) : undefined;

let dir: string;
let root: string;
let server: TftpServer;
let port: number;
let small: Buffer;
let big: Buffer;
const logs: TftpLog[] = [];
const events: BootEvent[] = [];

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'vaquero-tftp-'));
  root = path.join(dir, 'root');
  await mkdir(path.join(root, 'sub'), { recursive: true });
  small = randomBytes(1000);
  big = randomBytes(3 * 1024 * 1024 + 123);
  await writeFile(path.join(root, 'small.bin'), small);
  await writeFile(path.join(root, 'big.bin'), big);
  await writeFile(path.join(dir, 'secret'), 'outside the root');
  await symlink(path.join(dir, 'secret'), path.join(root, 'escape'));
  await symlink('../small.bin', path.join(root, 'sub', 'inside'));
  port = await freePort();
  server = await startTftpServer({
    host: HOST,
    port,
    root,
    log: (entry) => logs.push(entry),
    events: { emit: (event) => events.push(event) },
  });
});

after(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

async function fetched(local: string, expected: Buffer): Promise<void> {
  const got = await readFile(local);
  assert.equal(got.length, expected.length);
  assert.ok(got.equals(expected), 'content differs');
}

test('tftp-hpa fetches a small and a large file (no options, 512-byte blocks)', async (t) => {
  if (!needs(t, 'tftp')) return;
  for (const [name, content] of [
    ['small.bin', small],
    ['big.bin', big],
  ] as const) {
    const local = path.join(dir, `hpa-${name}`);
    const r = await run(CLIENTS.tftp, [HOST, String(port), '-m', 'binary', '-c', 'get', name, local]);
    assert.equal(r.code, 0, r.out);
    await fetched(local, content);
  }
});

test('atftp fetches with and without blksize 1468, windowsize and tsize', async (t) => {
  if (!needs(t, 'atftp')) return;
  const plain = path.join(dir, 'atftp-small');
  let r = await run(CLIENTS.atftp, ['-g', '-r', 'small.bin', '-l', plain, HOST, String(port)]);
  assert.equal(r.code, 0, r.out);
  await fetched(plain, small);
  const local = path.join(dir, 'atftp-big');
  const opts = ['--option', 'blksize 1468', '--option', 'windowsize 8', '--option', 'tsize 0'];
  r = await run(CLIENTS.atftp, [
    ...opts,
    '--verbose',
    '-g',
    '-r',
    'big.bin',
    '-l',
    local,
    HOST,
    String(port),
  ]);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /blksize.*1468/i);
  await fetched(local, big);
});

test('curl fetches with and without options, and through a symlink inside the root', async (t) => {
  if (!needs(t, 'curl')) return;
  const cases: [string, string[], Buffer][] = [
    ['small.bin', ['--tftp-no-options'], small],
    ['small.bin', [], small],
    ['big.bin', ['--tftp-blksize', '1468'], big],
    ['sub/inside', [], small],
  ];
  for (const [file, opts, content] of cases) {
    const local = path.join(dir, 'curl-out');
    const r = await run(CLIENTS.curl, ['-sS', ...opts, '-o', local, `tftp://${HOST}:${port}/${file}`]);
    assert.equal(r.code, 0, r.out);
    await fetched(local, content);
  }
});

test('a completed read emits a tftp event with the client IP and no MAC', () => {
  const event = events.find((e) => e.detail === `${HOST} small.bin`);
  assert.ok(event, JSON.stringify(events));
  assert.equal(event.kind, 'tftp');
  assert.equal(event.mac, '');
});

test('paths out of the root are refused', async () => {
  const { socket, next } = await rawSocket();
  try {
    const cases: [string, number | undefined][] = [
      ['/etc/passwd', 2],
      ['escape', 2],
      ['sub/../../secret', undefined],
      ['../secret', undefined],
      ['missing.bin', 1],
    ];
    for (const [file, code] of cases) {
      socket.send(request(1, file), port, HOST);
      const { msg } = await next();
      const got = errorCode(msg);
      assert.notEqual(got, undefined, `${file}: expected an ERROR packet`);
      if (code !== undefined) assert.equal(got, code, file);
    }
  } finally {
    socket.close();
  }
  assert.ok(logs.some((l) => l.level === 'warn' && l.file === 'escape'));
});

test('real clients are refused /etc/passwd and a symlink out of root', async (t) => {
  if (!needs(t, 'atftp') || !needs(t, 'tftp')) return;
  const local = path.join(dir, 'stolen');
  for (const file of ['/etc/passwd', 'escape', '../secret']) {
    await rm(local, { force: true });
    const r = await run(CLIENTS.atftp, ['-g', '-r', file, '-l', local, HOST, String(port)]);
    assert.notEqual(r.code, 0, `${file}: ${r.out}`);
    const content = await readFile(local, 'utf8').catch(() => '');
    assert.ok(!content.includes('root:') && !content.includes('outside'), file);
  }
  const r = await run(CLIENTS.tftp, [HOST, String(port), '-c', 'get', '/etc/passwd', local]);
  assert.match(r.out, /Access violation/);
});

test('PUT is refused with an error packet', async (t) => {
  const { socket, next } = await rawSocket();
  try {
    socket.send(request(2, 'upload.bin'), port, HOST);
    assert.notEqual(errorCode((await next()).msg), undefined);
  } finally {
    socket.close();
  }
  if (!needs(t, 'tftp')) return;
  const r = await run(CLIENTS.tftp, [
    HOST,
    String(port),
    '-m',
    'binary',
    '-c',
    'put',
    path.join(root, 'small.bin'),
    'upload.bin',
  ]);
  assert.match(r.out, /Cannot PUT|Error/i);
  assert.ok(!existsSync(path.join(root, 'upload.bin')));
});

test('garbage, short packets and a wrong TID do not kill the server', async (t) => {
  const intruder = await rawSocket();
  const client = await rawSocket();
  try {
    intruder.socket.send(Buffer.from([1]), port, HOST);
    for (let i = 0; i < 500; i++) intruder.socket.send(randomBytes(i % 600), port, HOST);

    // Let the server drain its receive buffer, which the garbage may have filled.
    await new Promise((resolve) => setTimeout(resolve, 500));

    // A transfer is under way: the client got DATA 1 from the transfer port and has not ACKed yet.
    client.socket.send(request(1, 'big.bin'), port, HOST);
    const first = await client.next();
    assert.equal(first.msg.readUInt16BE(0), 3);
    const tid = first.port;
    for (const packet of [
      Buffer.from([4]),
      Buffer.from([0, 4, 0, 1]),
      ...Array.from({ length: 200 }, (_, i) => randomBytes(i)),
    ]) {
      intruder.socket.send(packet, tid, HOST);
    }
    // RFC 1350: a packet from another TID gets error 5 and the transfer goes on.
    let reply = await intruder.next();
    // Errors from the server port answering the garbage come first.
    while (reply.port !== tid) reply = await intruder.next();
    assert.equal(reply.port, tid);
    assert.equal(errorCode(reply.msg), 5);
    client.socket.send(Buffer.from([0, 4, 0, 1]), tid, HOST);
    const second = await client.next();
    assert.equal(second.msg.readUInt16BE(0), 3);
    assert.equal(second.msg.readUInt16BE(2), 2);
    // A 1-byte packet from the right TID ends that transfer with an error, not the process.
    client.socket.send(Buffer.from([0]), tid, HOST);
    let end = await client.next();
    while (end.msg.readUInt16BE(0) === 3) end = await client.next();
    assert.notEqual(errorCode(end.msg), undefined);
  } finally {
    intruder.socket.close();
    client.socket.close();
  }
  if (!needs(t, 'curl')) return;
  const local = path.join(dir, 'after-fuzz');
  const r = await run(CLIENTS.curl, [
    '-sS',
    '--tftp-blksize',
    '1468',
    '-o',
    local,
    `tftp://${HOST}:${port}/big.bin`,
  ]);
  assert.equal(r.code, 0, r.out);
  await fetched(local, big);
});

test('a silent client: retransmissions back off (1, 2, 4, 8, 8 timeouts), then "Timed out"', async () => {
  const base = 100;
  const patient = await startTftpServer({
    host: HOST,
    port: await freePort(),
    root,
    timeoutMs: base,
    log: () => {},
    events: { emit: () => {} },
  });
  const client = await rawSocket();
  try {
    const at = (): number => performance.now();
    client.socket.send(request(1, 'big.bin'), patient.port, HOST);
    const first = await client.next();
    const tid = first.port;
    // ACK block 1 only after two retransmissions of DATA 2: the wait is back at the first timeout.
    client.socket.send(Buffer.from([0, 4, 0, 1]), tid, HOST);
    const arrivals: number[] = [];
    for (let i = 0; i < 3; i++) {
      const data = await client.next();
      assert.equal(data.msg.readUInt16BE(2), 2);
      arrivals.push(at());
    }
    client.socket.send(Buffer.from([0, 4, 0, 2]), tid, HOST);
    const third = await client.next();
    assert.equal(third.msg.readUInt16BE(2), 3);
    const sent3 = at();
    // Now silent: DATA 3 again after 1, 2, 4, 8 and 8 timeouts, then the error.
    const gaps: number[] = [];
    let last = sent3;
    let end: Reply;
    for (;;) {
      end = await client.next(5_000);
      gaps.push(at() - last);
      last = at();
      if (end.msg.readUInt16BE(0) !== 3) break;
      assert.equal(end.msg.readUInt16BE(2), 3);
    }
    assert.equal(errorCode(end.msg), 0);
    assert.match(end.msg.subarray(4).toString('latin1'), /Timed out/);
    assert.equal(gaps.length, 6, `gaps ${gaps.map(Math.round).join(', ')} ms`);
    const [g1, g2, g3, g4, g5] = gaps as [number, number, number, number, number];
    const why = `gaps ${gaps.map(Math.round).join(', ')} ms`;
    assert.ok(g1 >= base * 0.9 && g1 < base * 1.9, why);
    assert.ok(g2 >= base * 1.9 && g3 >= base * 3.9 && g4 >= base * 7.9 && g5 >= base * 7.9, why);
    assert.ok(g5 < base * 12, why);
    // DATA 2 had backed off too before its ACK (g1 above: the ACK brought the wait back to 1).
    assert.ok(arrivals[2]! - arrivals[1]! >= base * 1.9, `DATA 2 at ${arrivals.map(Math.round).join(', ')}`);
  } finally {
    client.socket.close();
    await patient.close();
  }
});

test('with worker threads: real clients get correct files, refusals and boot events come back', async (t) => {
  if (!needs(t, 'tftp') || !needs(t, 'atftp') || !needs(t, 'curl')) return;
  const wLogs: TftpLog[] = [];
  const wEvents: BootEvent[] = [];
  const wPort = await freePort();
  const threaded = await startTftpServer({
    host: HOST,
    port: wPort,
    root,
    workers: 2,
    log: (entry) => wLogs.push(entry),
    events: { emit: (event) => wEvents.push(event) },
  });
  try {
    // Concurrent fetches, so both threads serve some.
    const fetches = Array.from({ length: 6 }, (_, i) => {
      const local = path.join(dir, `worker-${i}`);
      const args =
        i % 3 === 0
          ? [CLIENTS.tftp, [HOST, String(wPort), '-m', 'binary', '-c', 'get', 'big.bin', local]]
          : i % 3 === 1
            ? [
                CLIENTS.atftp,
                [
                  '--option',
                  'blksize 1468',
                  '--option',
                  'windowsize 8',
                  '-g',
                  '-r',
                  'big.bin',
                  '-l',
                  local,
                  HOST,
                  String(wPort),
                ],
              ]
            : [
                CLIENTS.curl,
                ['-sS', '--tftp-blksize', '1468', '-o', local, `tftp://${HOST}:${wPort}/big.bin`],
              ];
      return run(args[0] as string, args[1] as string[]).then(async (r) => {
        assert.equal(r.code, 0, r.out);
        await fetched(local, big);
      });
    });
    await Promise.all(fetches);
    const refused = await run(CLIENTS.tftp, [
      HOST,
      String(wPort),
      '-c',
      'get',
      '/etc/passwd',
      path.join(dir, 'w-stolen'),
    ]);
    assert.match(refused.out, /Access violation/);
    assert.equal(wEvents.filter((e) => e.kind === 'tftp' && e.detail === `${HOST} big.bin`).length, 6);
    assert.ok(
      wLogs.some((l) => l.msg.includes('2 worker thread(s)')),
      JSON.stringify(wLogs),
    );
    assert.ok(
      wLogs.some((l) => l.msg.startsWith('refused: ')),
      JSON.stringify(wLogs),
    );
    assert.equal(wLogs.filter((l) => l.msg.startsWith('TFTP worker')).length, 0, JSON.stringify(wLogs));
  } finally {
    await threaded.close();
  }
});

test('block numbers roll over past 65535 (curl, blksize 8, 600,001 bytes: 75,001 blocks)', async (t) => {
  if (!needs(t, 'curl')) return;
  const rolled = randomBytes(600_001);
  await writeFile(path.join(root, 'rolled.bin'), rolled);
  const local = path.join(dir, 'curl-rolled');
  const r = await run(CLIENTS.curl, [
    '-sS',
    '--tftp-blksize',
    '8',
    '-o',
    local,
    `tftp://${HOST}:${port}/rolled.bin`,
  ]);
  assert.equal(r.code, 0, r.out);
  await fetched(local, rolled);
});
