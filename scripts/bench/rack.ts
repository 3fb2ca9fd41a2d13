// Rack power-on benchmark (not a test): N machines switched on at the same moment, each going through
// the whole network boot (firmware DHCP, TFTP of ipxe.efi, iPXE's DHCP, its HTTP script, kernel and
// initrd; scripts/bench/lib/rack-client.ts) from the client namespace, against our servers and
// against dnsmasq (DHCP + TFTP) with nginx (HTTP, one worker), one after the other in one run.
// Figure: the time until the last machine has its last byte, and per phase.
//
// Ours runs as the protocol benchmarks run it (scripts/bench/lib/serve-ours.ts): the DHCP, TFTP (2
// worker threads, the agent's default) and HTTP servers, each in its own process in the server
// namespace. dnsmasq runs without a lease file as `dnsmasq-ro` (the same work as ours, which keeps no
// lease state) and with one as `dnsmasq`; its --tftp-max is raised above N (default 50).
//
// `--baseline <checkout>` adds that checkout's servers (e.g. main's, for an A/B in one run) as
// `vaquero-base`.
//
//   npx tsx scripts/bench/rack.ts [--quick] [--machines 50,200] [--rounds 2] [--kernel-mb 8]
//                                 [--initrd-mb 16] [--only vaquero,dnsmasq-ro,dnsmasq] [--tag h3]
//                                 [--baseline <dir>]
import { existsSync, realpathSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ipxeScript, renderStage } from '../../sot/boot-chain';
import { macSlug } from '../../sot/ipv4';
import { benchHosts, INITRD_PATH, KERNEL_PATH, loadBenchModel, SITE, writeBenchSot } from './lib/model';
import {
  CLIENT_IP,
  createBenchNet,
  drain,
  removeOnExit,
  SERVER_IP,
  waitForLine,
  type BenchNet,
} from './lib/bench-net';
import { netnsProblem } from '../../cli/lab/netns';
import { interleave, machineContext, medianFigures, OURS, report, type Figure } from './lib/table';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    machines: { type: 'string' },
    rounds: { type: 'string' },
    'kernel-mb': { type: 'string' },
    'initrd-mb': { type: 'string' },
    only: { type: 'string' },
    /** The namespaces' name prefix (2-8 characters). */
    tag: { type: 'string', default: 'h3' },
    baseline: { type: 'string' },
  },
});
const quick = values.quick;
const counts = (values.machines ?? (quick ? '5' : '50,200')).split(',').map(Number);
const rounds = Number(values.rounds ?? (quick ? 1 : 2));
const kernelMb = Number(values['kernel-mb'] ?? (quick ? 1 : 8));
const initrdMb = Number(values['initrd-mb'] ?? (quick ? 2 : 16));
const hostCount = Math.max(...counts);
const DNSMASQ = '/usr/sbin/dnsmasq';
const NGINX = '/usr/sbin/nginx';
const IPXE = ['/usr/lib/ipxe/ipxe.efi', '/boot/ipxe.efi'].find((p) => existsSync(p));
const BASE = 'vaquero-base';
const SERVERS = [OURS, ...(values.baseline ? [BASE] : []), 'dnsmasq-ro', 'dnsmasq'];
const servers = values.only ? values.only.split(',').filter((s) => SERVERS.includes(s)) : SERVERS;
const HTTP_PORT = 8080;

interface Phase {
  p50: number;
  max: number;
}
interface RackResult {
  machines: number;
  completed: number;
  failures: number;
  firstFailure: string;
  retransmits: number;
  bytes: number;
  dhcp: Phase;
  tftp: Phase;
  ipxeDhcp: Phase;
  lastByte: Phase;
}

async function writeFileOf(file: string, bytes: number, seed: number): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const handle = await open(file, 'w');
  try {
    const chunk = Buffer.alloc(1 << 20);
    for (let off = 0; off < bytes; off += chunk.length) {
      for (let i = 0; i < chunk.length; i += 4) chunk.writeUInt32LE(((off + i) ^ seed) >>> 0, i);
      await handle.write(chunk, 0, Math.min(chunk.length, bytes - off));
    }
  } finally {
    await handle.close();
  }
}

function nginxConfig(dir: string, root: string): string {
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(
    (t) => `  ${t}_temp_path ${dir}/nginx-tmp/${t};`,
  );
  return [
    'worker_processes 1;',
    'user root root;',
    `error_log ${dir}/nginx-error.log warn;`,
    `pid ${dir}/nginx.pid;`,
    'events { worker_connections 4096; }',
    'http {',
    '  access_log off; sendfile on; tcp_nopush on; default_type application/octet-stream;',
    ...temp,
    `  server { listen ${SERVER_IP}:${HTTP_PORT}; root ${root};`,
    '    location /files/ { } location /ipxe/ { default_type text/plain; } }',
    '}',
    '',
  ].join('\n');
}

/** Starts the servers of one side; returns their processes' output tails and a liveness check. */
async function startSide(name: string, net: BenchNet, dir: string, root: string) {
  const children = [];
  if (name === OURS || name === BASE) {
    const checkout = name === BASE ? (values.baseline ?? '') : path.join(import.meta.dirname, '../..');
    const ours = (args: string[]) =>
      net.spawn(net.server, process.execPath, [
        '--import',
        'tsx',
        path.join(checkout, 'scripts/bench/lib/serve-ours.ts'),
        ...args,
      ]);
    const sot = path.join(dir, 'sot');
    const hosts = String(hostCount);
    children.push(ours(['dhcp', '--sot', sot, '--interface', net.ifServer]));
    children.push(ours(['tftp', '--root', path.join(root, 'tftp'), '--hosts', hosts, '--tftp-workers', '2']));
    children.push(
      ours([
        'http',
        '--sot',
        sot,
        '--root',
        path.join(root, 'files'),
        '--hosts',
        hosts,
        '--port',
        String(HTTP_PORT),
      ]),
    );
    const tails = children.map(drain);
    await Promise.all(children.map((c) => waitForLine(c, /^READY/, 60_000)));
    return { children, tails };
  }
  const hostsFile = path.join(dir, 'dnsmasq-hosts');
  await writeFile(
    hostsFile,
    benchHosts(hostCount)
      .map((h) => `${h.mac},${h.ipv4},${h.name}`)
      .join('\n') + '\n',
  );
  children.push(
    net.spawn(net.server, DNSMASQ, [
      '--no-daemon',
      '--conf-file=/dev/null',
      '--port=0',
      `--interface=${net.ifServer}`,
      '--bind-interfaces',
      '--user=root',
      '--group=root',
      `--pid-file=${path.join(dir, 'dnsmasq.pid')}`,
      `--dhcp-leasefile=${path.join(dir, `${name}-${Date.now()}.leases`)}`,
      '--dhcp-range=10.213.0.0,static,255.255.0.0,1h',
      `--dhcp-hostsfile=${hostsFile}`,
      '--dhcp-authoritative',
      '--no-ping',
      '--quiet-dhcp',
      '--dhcp-lease-max=100000',
      '--dhcp-userclass=set:ipxe,iPXE',
      `--dhcp-boot=tag:!ipxe,ipxe.efi,,${SERVER_IP}`,
      `--dhcp-boot=tag:ipxe,http://${SERVER_IP}:${HTTP_PORT}/boot.ipxe`,
      '--enable-tftp',
      `--tftp-root=${path.join(root, 'tftp')}`,
      `--tftp-max=${hostCount * 2}`,
      ...(name === 'dnsmasq-ro' ? ['--leasefile-ro'] : []),
    ]),
  );
  await mkdir(path.join(dir, 'nginx-tmp'), { recursive: true });
  const conf = path.join(dir, 'nginx.conf');
  await writeFile(conf, nginxConfig(dir, root));
  children.push(net.spawn(net.server, NGINX, ['-p', dir, '-c', conf, '-g', 'daemon off;']));
  return { children, tails: children.map(drain) };
}

async function rack(net: BenchNet, dir: string, count: number): Promise<RackResult> {
  const { stdout } = await net.exec(
    net.client,
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(import.meta.dirname, 'lib/rack-client.ts'),
      ...['--server', SERVER_IP, '--relay', CLIENT_IP, '--macs', path.join(dir, 'macs.txt')],
      ...['--count', String(count), '--http-port', String(HTTP_PORT)],
    ],
    600_000,
  );
  return JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as RackResult;
}

async function measure(name: string, dir: string, root: string, perMachine: number) {
  const net = await createBenchNet(values.tag);
  try {
    const { children, tails } = await startSide(name, net, dir, root);
    const tail = () => tails.map((t) => t()).join('\n---\n');
    // Until one machine boots: every server up; also the warm-up (JIT, page cache), not reported.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const r = await rack(net, dir, 1).catch((err: Error) => ({ completed: 0, firstFailure: err.message }));
      if (r.completed === 1) break;
      if (Date.now() > deadline) throw new Error(`no machine boots: ${r.firstFailure}\n${tail()}`);
      await new Promise((res) => setTimeout(res, 500));
    }
    await rack(net, dir, Math.min(10, hostCount));
    const results: RackResult[] = [];
    for (const count of counts) {
      const r = await rack(net, dir, count);
      // A machine that fails is reported (its row and its first error), not the whole side.
      if (r.completed === 0) throw new Error(`no machine of ${count} booted: ${r.firstFailure}`);
      if (r.failures > 0)
        console.error(`bench-rack: ${name}, N=${count}: ${r.failures} failed: ${r.firstFailure}`);
      const expected = r.completed * perMachine;
      if (r.bytes < expected) throw new Error(`${r.bytes} bytes, expected ${expected}+`);
      results.push(r);
    }
    if (children.some((c) => c.exitCode !== null)) throw new Error(`${name} exited mid-run:\n${tail()}`);
    return results;
  } finally {
    await net.close();
  }
}

const problem =
  (await netnsProblem()) ??
  [DNSMASQ, NGINX].map((p) => (existsSync(p) ? undefined : `${p} not found`)).find(Boolean) ??
  (IPXE ? undefined : 'ipxe.efi not found (apt-get install ipxe)');
if (problem) {
  console.error(`bench-rack: ${problem}`);
  process.exit(1);
}

const dir = await mkdtemp(path.join(tmpdir(), 'h16b-bench-rack-'));
removeOnExit(dir);
try {
  await chmod(dir, 0o755);
  const root = path.join(dir, 'www');
  const hosts = benchHosts(hostCount);
  await writeBenchSot(path.join(dir, 'sot'), hosts, { initrd: true });
  await writeFile(path.join(dir, 'macs.txt'), hosts.map((h) => h.mac).join('\n') + '\n');
  const model = await loadBenchModel(path.join(dir, 'sot'));
  await writeFileOf(path.join(root, 'files', KERNEL_PATH), kernelMb * 1e6, 0x85ebca6b);
  await writeFileOf(path.join(root, 'files', INITRD_PATH), initrdMb * 1e6, 0x27d4eb2f);
  await mkdir(path.join(root, 'tftp'), { recursive: true });
  await copyFile(realpathSync(IPXE ?? ''), path.join(root, 'tftp', 'ipxe.efi'));
  const ipxeSize = (await import('node:fs')).statSync(path.join(root, 'tftp', 'ipxe.efi')).size;
  // nginx serves the scripts our asset app renders, pre-rendered to one file per MAC.
  await mkdir(path.join(root, 'ipxe'), { recursive: true });
  for (const host of model.sites[SITE]?.hosts ?? []) {
    const slug = macSlug(host.interfaces[0]?.mac ?? '');
    await writeFile(path.join(root, 'ipxe', slug), ipxeScript(renderStage(model, SITE, host, 0)));
  }
  const perMachine = ipxeSize + (kernelMb + initrdMb) * 1e6;
  const { perRound, failures } = await interleave(servers, rounds, (name) =>
    measure(name, dir, root, perMachine),
  );
  const figuresOf = (results: Record<string, RackResult[]>): Figure[] =>
    counts.flatMap((count, i) => {
      const pick = (f: (r: RackResult) => number) =>
        Object.fromEntries(servers.map((s) => [s, results[s]?.[i] ? f(results[s][i]) : undefined]));
      return [
        {
          name: `N=${count}: last machine's last byte, s`,
          values: pick((r) => r.lastByte.max / 1000),
          digits: 2,
        },
        {
          name: `N=${count}: median machine's last byte, s`,
          values: pick((r) => r.lastByte.p50 / 1000),
          digits: 2,
        },
        { name: `N=${count}: last firmware DHCP ACK, s`, values: pick((r) => r.dhcp.max / 1000), digits: 3 },
        { name: `N=${count}: last ipxe.efi TFTP done, s`, values: pick((r) => r.tftp.max / 1000), digits: 2 },
        { name: `N=${count}: last iPXE DHCP ACK, s`, values: pick((r) => r.ipxeDhcp.max / 1000), digits: 2 },
        { name: `N=${count}: retransmissions`, values: pick((r) => r.retransmits), digits: 0, ratio: false },
        { name: `N=${count}: machines failed`, values: pick((r) => r.failures), digits: 0, ratio: false },
      ];
    });
  const figures = medianFigures(perRound.map(figuresOf));
  await report(
    'bench-rack',
    [
      `Rack power-on: N machines at once, each DHCP + TFTP ipxe.efi (${ipxeSize} B, blksize 1468 lock-step) + iPXE DHCP + HTTP script, kernel ${kernelMb} MB, initrd ${initrdMb} MB; nginx 1 worker; ${rounds} interleaved round(s), median shown`,
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
