// HTTP benchmark (not a test): our agent's asset app (Hono on @hono/node-server) against nginx, one
// after the other in one run, each in its own network namespace, loaded by scripts/bench/http-load.ts
// (keep-alive connections, closed loop) from the peer namespace. Cases: a big boot file under /files/
// with a few connections, and per-host iPXE scripts (/ipxe/<mac>, every host armed, rotating MACs)
// with many. nginx serves the same file and, for the scripts, the same text pre-rendered to one
// static file per MAC; it runs one worker process, like our single Node process, and as `nginx-2w`
// with two, which is what it would use on this machine.
//
// `--baseline <checkout>` adds that checkout's server (e.g. main's, for an A/B in one run) as
// `vaquero-base`.
//
//   npx tsx scripts/bench/http.ts [--quick] [--rounds 2] [--size-mb 50] [--seconds 10] [--hosts 1000]
//                                 [--file-connections 4] [--script-connections 32] [--nginx-workers 1]
//                                 [--baseline <dir>] [--only vaquero,nginx]
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ipxeScript, renderStage } from '../../sot/boot-chain';
import { macSlug } from '../../sot/ipv4';
import { benchHosts, KERNEL_PATH, loadBenchModel, SITE, writeBenchSot } from './lib/model';
import { createBenchNet, drain, removeOnExit, SERVER_IP, waitForLine, type BenchNet } from './lib/bench-net';
import { netnsProblem } from '../../cli/lab/netns';
import { interleave, machineContext, medianFigures, OURS, report, type Figure } from './lib/table';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    'size-mb': { type: 'string' },
    seconds: { type: 'string' },
    hosts: { type: 'string' },
    'file-connections': { type: 'string' },
    'script-connections': { type: 'string' },
    'nginx-workers': { type: 'string', default: '1' },
    rounds: { type: 'string' },
    baseline: { type: 'string' },
    only: { type: 'string' },
  },
});
const quick = values.quick;
const rounds = Number(values.rounds ?? (quick ? 1 : 2));
const sizeMb = Number(values['size-mb'] ?? (quick ? 5 : 50));
const seconds = Number(values.seconds ?? (quick ? 1 : 10));
const hostCount = Number(values.hosts ?? (quick ? 50 : 1000));
const fileConns = Number(values['file-connections'] ?? (quick ? 2 : 4));
const scriptConns = Number(values['script-connections'] ?? (quick ? 4 : 32));
const nginxWorkers = values['nginx-workers'];
const NGINX = '/usr/sbin/nginx';
const PEER = 'nginx';
const PEER_2W = 'nginx-2w';
const BASE = 'vaquero-base';
const PORT = 8080;

interface LoadResult {
  requests: number;
  bytes: number;
  errors: number;
  firstError: string;
  seconds: number;
  p50ms: number;
  p99ms: number;
}

async function writeBigFile(file: string, bytes: number): Promise<void> {
  const handle = await open(file, 'w');
  try {
    const chunk = Buffer.alloc(1 << 20);
    for (let off = 0; off < bytes; off += chunk.length) {
      for (let i = 0; i < chunk.length; i += 4) chunk.writeUInt32LE(((off + i) ^ 0x85ebca6b) >>> 0, i);
      await handle.write(chunk, 0, Math.min(chunk.length, bytes - off));
    }
  } finally {
    await handle.close();
  }
}

async function load(net: BenchNet, args: string[]): Promise<LoadResult> {
  const { stdout } = await net.exec(
    net.client,
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(import.meta.dirname, 'lib/http-load.ts'),
      '--base',
      `http://${SERVER_IP}:${PORT}`,
      ...args,
    ],
    seconds * 1000 + 120_000,
  );
  const result = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as LoadResult;
  if (result.errors > 0) throw new Error(`${result.errors} failed requests (${result.firstError})`);
  if (result.requests === 0) throw new Error('no request completed');
  return result;
}

function nginxConfig(dir: string, root: string, workers: string): string {
  return `worker_processes ${workers};
user root root;
error_log ${dir}/nginx-error.log warn;
pid ${dir}/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path ${dir}/nginx-tmp/body;
  proxy_temp_path ${dir}/nginx-tmp/proxy;
  fastcgi_temp_path ${dir}/nginx-tmp/fastcgi;
  uwsgi_temp_path ${dir}/nginx-tmp/uwsgi;
  scgi_temp_path ${dir}/nginx-tmp/scgi;
  default_type application/octet-stream;
  server {
    listen ${SERVER_IP}:${PORT};
    root ${root};
    location /files/ { }
    location /ipxe/ { default_type text/plain; }
  }
}
`;
}

async function startServer(name: string, net: BenchNet, dir: string, root: string) {
  if (name === OURS || name === BASE) {
    const checkout = name === BASE ? (values.baseline ?? '') : path.join(import.meta.dirname, '../..');
    const child = net.spawn(net.server, process.execPath, [
      ...(process.env.VAQUERO_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean),
      '--import',
      'tsx',
      path.join(checkout, 'scripts/bench/lib/serve-ours.ts'),
      'http',
      '--sot',
      path.join(dir, 'sot'),
      '--root',
      path.join(root, 'files'),
      '--hosts',
      String(hostCount),
      '--port',
      String(PORT),
    ]);
    const tail = drain(child);
    await waitForLine(child, /^READY/, 60_000);
    return { child, tail };
  }
  await mkdir(path.join(dir, 'nginx-tmp'), { recursive: true });
  const conf = path.join(dir, 'nginx.conf');
  await writeFile(conf, nginxConfig(dir, root, name === PEER_2W ? '2' : (nginxWorkers ?? '1')));
  const child = net.spawn(net.server, NGINX, ['-p', dir, '-c', conf, '-g', 'daemon off;']);
  return { child, tail: drain(child) };
}

async function measure(name: string, dir: string, root: string, scripts: string) {
  const net = await createBenchNet();
  try {
    const { child, tail } = await startServer(name, net, dir, root);
    const file = `/files/${KERNEL_PATH}`;
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        await net.exec(
          net.client,
          'curl',
          ['-sf', '-o', '/dev/null', `http://${SERVER_IP}:${PORT}${file}`],
          10_000,
        );
        break;
      } catch (err) {
        if (Date.now() > deadline)
          throw new Error(`no HTTP answer after 20 s: ${(err as Error).message}\n${tail()}`);
        await new Promise((r) => setTimeout(r, 300));
      }
    }
    // Warm-up (JIT, page cache), not reported.
    await load(net, ['--path-list', scripts, '--connections', '4', '--seconds', '1']);
    const big = await load(net, [
      '--path',
      file,
      '--connections',
      String(fileConns),
      '--seconds',
      String(seconds),
    ]);
    const small = await load(net, [
      '--path-list',
      scripts,
      '--connections',
      String(scriptConns),
      '--seconds',
      String(seconds),
    ]);
    if (child.exitCode !== null) throw new Error(`${name} exited during the run:\n${tail()}`);
    return { big, small };
  } finally {
    await net.close();
  }
}

const problem = await netnsProblem();
if (problem) {
  console.error(`bench-http: ${problem}`);
  process.exit(1);
}
const all = [OURS, ...(values.baseline ? [BASE] : []), ...(existsSync(NGINX) ? [PEER, PEER_2W] : [])];
const servers = values.only ? all.filter((s) => values.only?.split(',').includes(s)) : all;
if (!existsSync(NGINX))
  console.error(`bench-http: skipping ${PEER}: ${NGINX} not found (apt-get install nginx-light)`);

const dir = await mkdtemp(path.join(tmpdir(), 'h3-bench-http-'));
removeOnExit(dir);
try {
  await chmod(dir, 0o755);
  const root = path.join(dir, 'www');
  const hosts = benchHosts(hostCount);
  await writeBenchSot(path.join(dir, 'sot'), hosts);
  const model = await loadBenchModel(path.join(dir, 'sot'));
  // The big file is the kernel of the armed stage, as a real boot would fetch it.
  await mkdir(path.join(root, 'files', path.dirname(KERNEL_PATH)), { recursive: true });
  await writeBigFile(path.join(root, 'files', KERNEL_PATH), sizeMb * 1e6);
  await mkdir(path.join(root, 'ipxe'), { recursive: true });
  const scriptPaths: string[] = [];
  for (const host of model.sites[SITE]?.hosts ?? []) {
    const mac = host.interfaces[0]?.mac ?? '';
    const slug = macSlug(mac);
    await writeFile(path.join(root, 'ipxe', slug), ipxeScript(renderStage(model, SITE, host, 0)));
    scriptPaths.push(`/ipxe/${slug}`);
  }
  const scripts = path.join(dir, 'script-paths.txt');
  await writeFile(scripts, scriptPaths.join('\n') + '\n');

  const { perRound, failures } = await interleave(servers, rounds, (name) =>
    measure(name, dir, root, scripts),
  );
  const figuresOf = (results: Record<string, { big: LoadResult; small: LoadResult }>): Figure[] => {
    const pick = (f: (r: { big: LoadResult; small: LoadResult }) => number) =>
      Object.fromEntries(servers.map((s) => [s, results[s] ? f(results[s]) : undefined]));
    return [
      {
        name: `${sizeMb} MB file, ${fileConns} connections: MB/s`,
        values: pick((r) => r.big.bytes / 1e6 / r.big.seconds),
      },
      { name: `${sizeMb} MB file: p50 s per download`, values: pick((r) => r.big.p50ms / 1000), digits: 2 },
      {
        name: `/ipxe/<mac> scripts, ${scriptConns} connections: requests/s`,
        values: pick((r) => r.small.requests / r.small.seconds),
      },
      { name: '/ipxe/<mac> p50 ms', values: pick((r) => r.small.p50ms), digits: 2 },
      { name: '/ipxe/<mac> p99 ms', values: pick((r) => r.small.p99ms), digits: 2 },
    ];
  };
  const figures = medianFigures(perRound.map(figuresOf));
  await report(
    'bench-http',
    [
      `HTTP: scripts/bench/http-load.ts, ${seconds} s per case, keep-alive, ${hostCount} armed hosts; nginx ${nginxWorkers} worker(s), nginx-2w 2; one server at a time, ${rounds} interleaved round(s), median shown`,
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
