// TFTP benchmark (not a test): MB/s of our TFTP server against tftpd-hpa (`in.tftpd -L`), one after
// the other in one run, each in its own network namespace with the atftp client in the peer namespace.
// Cases: a big file with blksize 512 and 1468, with windowsize 16 (RFC 7440; tftpd-hpa does not
// implement it and answers lock-step, which is the point of the row), and ipxe.efi fetched many times
// by concurrent clients. Each client is one shell in the client namespace looping over atftp, so
// process start-up costs the same on both sides. Ours runs as the agent runs it (transfers in
// --tftp-workers threads, default 2) and, as `vaquero-1thread`, with every transfer on one thread.
//
//   npx tsx scripts/bench/tftp.ts [--quick] [--rounds 2] [--size-mb 50] [--repeat 3] [--clients 8] [--fetches 20]
//                                 [--tftp-workers 2]
import { spawnSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, open, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createBenchNet, drain, removeOnExit, SERVER_IP, waitForLine, type BenchNet } from './lib/bench-net';
import { netnsProblem } from '../../cli/lab/netns';
import { interleave, machineContext, medianFigures, OURS, report, type Figure } from './lib/table';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    'size-mb': { type: 'string' },
    repeat: { type: 'string' },
    clients: { type: 'string' },
    fetches: { type: 'string' },
    rounds: { type: 'string' },
    'tftp-workers': { type: 'string', default: '2' },
  },
});
const quick = values.quick;
const rounds = Number(values.rounds ?? (quick ? 1 : 2));
const sizeMb = Number(values['size-mb'] ?? (quick ? 2 : 50));
const repeat = Number(values.repeat ?? (quick ? 1 : 3));
const clients = Number(values.clients ?? (quick ? 2 : 8));
const fetches = Number(values.fetches ?? (quick ? 3 : 20));
const ATFTP = '/usr/bin/atftp';
const TFTPD = '/usr/sbin/in.tftpd';
const IPXE = ['/usr/lib/ipxe/ipxe.efi', '/boot/ipxe.efi'].find((p) => existsSync(p));
const PEER = 'tftpd-hpa';
const ONE_THREAD = 'vaquero-1thread';

interface Case {
  name: string;
  file: string;
  options: string[];
  clients: number;
  fetches: number;
}

/** Writes `bytes` of non-repeating data (a sparse or zero file would flatter the page cache). */
async function writeBigFile(file: string, bytes: number): Promise<void> {
  const handle = await open(file, 'w');
  try {
    const chunk = Buffer.alloc(1 << 20);
    for (let off = 0; off < bytes; off += chunk.length) {
      for (let i = 0; i < chunk.length; i += 4) chunk.writeUInt32LE(((off + i) ^ 0x9e3779b9) >>> 0, i);
      await handle.write(chunk, 0, Math.min(chunk.length, bytes - off));
    }
  } finally {
    await handle.close();
  }
}

/** `clients` shells in the client namespace, each fetching `fetches` times; resolves to the wall seconds. */
async function runCase(net: BenchNet, c: Case): Promise<number> {
  const opts = c.options.map((o) => `--option '${o}'`).join(' ');
  const loop =
    `i=0; while [ $i -lt ${c.fetches} ]; do ` +
    `${ATFTP} ${opts} -g -r ${c.file} -l /dev/null ${SERVER_IP} 69 || exit 1; i=$((i+1)); done`;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: c.clients }, () => net.exec(net.client, 'sh', ['-c', loop], 600_000)),
  );
  return (performance.now() - started) / 1000;
}

/** One fetch into a real file and a size check: a fast wrong answer must not count as a figure. */
async function verify(net: BenchNet, dir: string, c: Case, size: number): Promise<void> {
  const out = path.join(dir, `fetched-${path.basename(c.file)}`);
  const opts = c.options.flatMap((o) => ['--option', o]);
  await net.exec(net.client, ATFTP, [...opts, '-g', '-r', c.file, '-l', out, SERVER_IP, '69'], 120_000);
  const got = (await stat(out)).size;
  await rm(out, { force: true });
  if (got !== size) throw new Error(`${c.file}${opts.join(' ')}: fetched ${got} bytes, expected ${size}`);
}

async function startServer(name: string, net: BenchNet, root: string) {
  if (name === OURS || name === ONE_THREAD) {
    const child = net.spawn(net.server, process.execPath, [
      '--import',
      'tsx',
      path.join(import.meta.dirname, 'lib/serve-ours.ts'),
      'tftp',
      '--root',
      root,
      '--tftp-workers',
      name === OURS ? (values['tftp-workers'] ?? '2') : '0',
    ]);
    const tail = drain(child);
    await waitForLine(child, /^READY/, 60_000);
    return { child, tail };
  }
  // -L: foreground, listening itself; -s: chroot to the root; -u root: the temp dir is ours.
  const child = net.spawn(net.server, TFTPD, ['-L', '-s', '-u', 'root', '-a', `${SERVER_IP}:69`, root]);
  const tail = drain(child);
  return { child, tail };
}

async function measure(name: string, dir: string, root: string, cases: Case[], sizes: Map<string, number>) {
  const net = await createBenchNet();
  try {
    const { child, tail } = await startServer(name, net, root);
    const deadline = Date.now() + 20_000;
    const first = cases[0];
    if (!first) return [];
    // Ready when a fetch succeeds (tftpd-hpa prints nothing when it listens).
    for (;;) {
      try {
        await verify(net, dir, { ...first, file: 'ipxe.efi' }, sizes.get('ipxe.efi') ?? 0);
        break;
      } catch (err) {
        if (Date.now() > deadline)
          throw new Error(`no TFTP answer after 20 s: ${(err as Error).message}\n${tail()}`);
        await new Promise((r) => setTimeout(r, 300));
      }
    }
    const results: number[] = [];
    for (const c of cases) {
      await verify(net, dir, c, sizes.get(c.file) ?? 0);
      const seconds = await runCase(net, c);
      const bytes = (sizes.get(c.file) ?? 0) * c.clients * c.fetches;
      results.push(bytes / 1e6 / seconds);
    }
    if (child.exitCode !== null) throw new Error(`${name} exited during the run:\n${tail()}`);
    return results;
  } finally {
    await net.close();
  }
}

const problem =
  (await netnsProblem()) ??
  (existsSync(ATFTP) ? undefined : `${ATFTP} not found (apt-get install atftp)`) ??
  (IPXE ? undefined : 'ipxe.efi not found (apt-get install ipxe)');
if (problem) {
  console.error(`bench-tftp: ${problem}`);
  process.exit(1);
}
const servers = existsSync(TFTPD) ? [OURS, ONE_THREAD, PEER] : [OURS, ONE_THREAD];
if (!existsSync(TFTPD)) console.error(`bench-tftp: skipping ${PEER}: ${TFTPD} not found`);

const dir = await mkdtemp(path.join(tmpdir(), 'h3-bench-tftp-'));
removeOnExit(dir);
try {
  const root = path.join(dir, 'root');
  await mkdir(root);
  // in.tftpd drops to its own user for reads; the served tree must be world-readable.
  await chmod(dir, 0o755);
  await chmod(root, 0o755);
  await writeBigFile(path.join(root, 'big.bin'), sizeMb * 1e6);
  await copyFile(realpathSync(IPXE ?? ''), path.join(root, 'ipxe.efi'));
  const sizes = new Map<string, number>();
  for (const f of ['big.bin', 'ipxe.efi']) sizes.set(f, (await stat(path.join(root, f))).size);
  const big = (options: string[], label: string): Case => ({
    name: `${sizeMb} MB file, ${label}, 1 client x ${repeat}: MB/s`,
    file: 'big.bin',
    options,
    clients: 1,
    fetches: repeat,
  });
  const cases: Case[] = [
    big(['blksize 512'], 'blksize 512'),
    big(['blksize 1468'], 'blksize 1468'),
    big(['blksize 1468', 'windowsize 16'], 'blksize 1468 windowsize 16'),
    {
      name: `ipxe.efi, blksize 1468, ${clients} clients x ${fetches}: MB/s`,
      file: 'ipxe.efi',
      options: ['blksize 1468'],
      clients,
      fetches,
    },
  ];
  const { perRound, failures } = await interleave(servers, rounds, (name) =>
    measure(name, dir, root, cases, sizes),
  );
  const figuresOf = (results: Record<string, number[]>): Figure[] =>
    cases.map((c, i) => ({
      name: c.name,
      values: Object.fromEntries(servers.map((s) => [s, results[s]?.[i]])),
      digits: 2,
    }));
  const figures = medianFigures(perRound.map(figuresOf));
  const ipxeSize = sizes.get('ipxe.efi') ?? 1;
  const last = figures[figures.length - 1];
  if (last) {
    figures.push({
      name: `ipxe.efi fetches/s (${clients} clients)`,
      values: Object.fromEntries(servers.map((s) => [s, ((last.values[s] ?? NaN) * 1e6) / ipxeSize])),
    });
  }
  // atftp prints its version on stderr.
  const v = spawnSync(ATFTP, ['-V'], { encoding: 'utf8' });
  const version = `${v.stdout ?? ''}${v.stderr ?? ''}`.split('\n')[0]?.trim();
  await report(
    'bench-tftp',
    [
      `TFTP: client ${version || 'atftp'}, ipxe.efi ${ipxeSize} bytes; one server at a time, ${rounds} interleaved round(s), median shown`,
      await machineContext(),
    ],
    servers,
    figures,
    failures.map((f) => `FAILED ${f}`),
  );
  if (failures.length) process.exitCode = 1;
} finally {
  await rm(dir, { recursive: true, force: true });
}
