// The real `vaquero agent` process with its boot services, in a network namespace of this test,
// against real clients in the peer namespace: udhcpc gets its reservation, curl the iPXE scripts,
// tftp-hpa the iPXE binary, radvd's advertisement reaches tcpdump. Then its model store goes away
// and the agent restarts: it keeps serving from its cache.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { NetbootTable } from '../../agent/state/netboot-table';
import { validateSot } from '../../sot/validate';
import { FileModelStore } from '../../activities/store/file-store';
import { agentConfig } from '../../agent/args';
import { certsCommand } from '../../cli/certs';
import type { Io } from '../../cli/io';
import { listen } from '../../server/http/listen';
import { createNetnsPair, netnsProblem, type NetnsPair } from '../../cli/lab/netns';
import { BUSYBOX, setMac, udhcpc } from '../helpers/dhcp-client';
import { agentApp, AGENT_TOKENS } from '../helpers/agent-api';
import { exampleSot, repoRoot, sotMin } from '../helpers/sot';

const TFTP = '/usr/bin/tftp';
const IPXE = '/usr/lib/ipxe/undionly.kpxe';
const AGENT_IP = '10.10.0.5';
const CORE1 = '52:54:00:10:00:01';
const CORE2 = '52:54:00:10:00:02';

async function missingTools(): Promise<string | undefined> {
  const netns = await netnsProblem();
  if (netns) return netns;
  if (!BUSYBOX) return 'busybox not found (apt-get install busybox-static)';
  if (!existsSync(TFTP)) return 'tftp-hpa not found (apt-get install tftp-hpa)';
  if (!existsSync(IPXE)) return `${IPXE} not found (apt-get install ipxe)`;
  if (!existsSync('/usr/sbin/radvd')) return 'radvd not found (apt-get install radvd)';
  if (!existsSync('/usr/bin/tcpdump') && !existsSync('/usr/sbin/tcpdump')) return 'tcpdump not found';
  return undefined;
}

interface AgentProc {
  child: ChildProcess;
  log(): string;
  /** SIGTERM, and the exit code. */
  stop(): Promise<number | null>;
}

async function startAgent(net: NetnsPair, args: string[]): Promise<AgentProc> {
  const child = spawn(
    'ip',
    ['netns', 'exec', net.a, process.execPath, path.join(repoRoot, 'bin/vaquero.mjs'), 'agent', ...args],
    { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`agent did not start:\n${log}`)), 60_000);
    const check = () => {
      if (/"msg":"HTTP on /.test(log) && /"msg":"TFTP on /.test(log) && /"msg":"DHCP /.test(log)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stderr?.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`agent exited (${code}):\n${log}`));
    });
  });
  return {
    child,
    log: () => log,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/** udhcpc in the client namespace as `mac`; returns the address it was given (and takes it). */
async function lease(net: NetnsPair, work: string, mac: string): Promise<string> {
  await net.exec(net.b, 'ip', ['addr', 'flush', 'dev', net.ifB]);
  await setMac(net, net.b, net.ifB, mac);
  const ip = (await udhcpc(net, net.b, net.ifB, work)).get('ip') ?? '';
  await net.exec(net.b, 'ip', ['addr', 'add', `${ip}/24`, 'dev', net.ifB]);
  return ip;
}

const curl = async (net: NetnsPair, url: string) =>
  (await net.exec(net.b, 'curl', ['-sS', '--fail', '--max-time', '10', url])).stdout;

async function tftpGet(net: NetnsPair, work: string, file: string): Promise<Buffer> {
  const out = path.join(work, `tftp-${file}`);
  await rm(out, { force: true });
  await net.exec(net.b, TFTP, ['-m', 'binary', AGENT_IP, '-c', 'get', file, out]);
  return readFile(out);
}

async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000) {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test(
  'the agent process serves DHCP, TFTP, HTTP and RAs from its model, also after losing its feed',
  { timeout: 240_000 },
  async (t) => {
    const missing = await missingTools();
    if (missing) {
      if (process.env.CI && process.env.CI !== 'false') throw new Error(`${missing}; CI must provide it`);
      t.skip(missing);
      return;
    }
    const work = await mkdtemp(path.join(tmpdir(), 'vq-h2-services-'));
    t.after(() => rm(work, { recursive: true, force: true }));
    const storeDir = path.join(work, 'store');
    const stateDir = path.join(work, 'agent');
    const filesDir = path.join(work, 'files');
    await mkdir(filesDir, { recursive: true });
    await writeFile(path.join(filesDir, 'hello.txt'), 'hello from the agent\n');
    const { model, diagnostics } = await validateSot(sotMin);
    assert.ok(model, JSON.stringify(diagnostics));
    const store = new FileModelStore(storeDir);
    await store.putRevision('c1', model);
    await store.setApplied('c1');
    // core-01 is armed by a (gone) workflow: its requests get its stage, its events go to the journal.
    await new NetbootTable(path.join(stateDir, 'netboot.json')).arm({
      mac: CORE1,
      site: 'lab1',
      host: 'core-01',
      commit: 'c1',
      stage: 1,
      workflowId: 'vq-h2-no-such-workflow',
      armedAt: new Date().toISOString(),
      token: 'agent-services-test-boot-token-1',
    });

    const net = await createNetnsPair({ tag: 'h2', a: [`${AGENT_IP}/24`, 'fd77::1/64'] });
    t.after(() => net.close());
    const common = [
      '--site',
      'lab1',
      '--state-dir',
      stateDir,
      '--model-dir',
      storeDir,
      '--model-poll-ms',
      '200',
    ];
    common.push('--boot-interface', net.ifA, '--files-dir', filesDir);
    // The agent's namespace holds only the boot network: Temporal is unreachable from it, on purpose.
    common.push('--temporal-address', '127.0.0.1:1', '--namespace', 'default');
    let agent = await startAgent(net, common);
    t.after(() => agent.stop());

    // DHCP: the reservation of each MAC.
    assert.equal(await lease(net, work, CORE2), '10.10.0.12');
    assert.equal(await lease(net, work, CORE1), '10.10.0.11');

    // HTTP: the chain script and core-01's armed script; an unarmed MAC boots from disk.
    assert.match(
      await curl(net, `http://${AGENT_IP}:8080/boot.ipxe`),
      /chain --autofree http:\/\/10\.10\.0\.5:8080\/ipxe\/\$\{mac:hexhyp\}/,
    );
    const armed = await curl(net, `http://${AGENT_IP}:8080/ipxe/52-54-00-10-00-01`);
    assert.match(armed, /^#!ipxe\n# vaquero: core-01 \(52:54:00:10:00:01\) stage 1\//);
    assert.match(armed, /^kernel /m);
    assert.match(
      await curl(net, `http://${AGENT_IP}:8080/ipxe/52-54-00-10-00-02`),
      /not armed for network boot/,
    );
    assert.equal(await curl(net, `http://${AGENT_IP}:8080/files/hello.txt`), 'hello from the agent\n');

    // TFTP: the iPXE binary, byte for byte; the event is core-01's (mapped from its leased IP).
    assert.deepEqual(await tftpGet(net, work, 'undionly.kpxe'), await readFile(IPXE));
    const traffic = () => readFile(path.join(stateDir, 'boot-traffic.log'), 'utf8').catch(() => '');
    await waitFor(
      async () => new RegExp(`^${CORE1} \\S+ tftp$`, 'm').test(await traffic()),
      'the tftp event of core-01',
    );
    assert.match(await traffic(), new RegExp(`^${CORE1} \\S+ ipxe$`, 'm'));

    // A new applied revision moves core-02: DHCP follows without a restart.
    const moved = structuredClone(model);
    const core2 = moved.sites.lab1!.hosts.find((h) => h.name === 'core-02')!;
    core2.interfaces[0]!.ipv4 = '10.10.0.42';
    await store.putRevision('c2', moved);
    await store.setApplied('c2');
    await waitFor(() => /reservations updated.*"commit":"c2"/.test(agent.log()), 'the c2 reservations');
    assert.equal(await lease(net, work, CORE2), '10.10.0.42');

    assert.equal(await agent.stop(), 0, `SIGTERM stops the agent cleanly:\n${agent.log()}`);

    // The feed goes away: the restarted agent serves its cached c2, and
    // (with --router-advertisements) advertises fd77::/64 on the boot interface.
    await rm(storeDir, { recursive: true });
    agent = await startAgent(net, [
      ...common,
      '--temporal-address',
      '127.0.0.1:1',
      '--router-advertisements',
      '--ra-prefix',
      'fd77::/64',
    ]);
    assert.match(agent.log(), /serving cached model.*"commit":"c2"/);
    assert.equal(await lease(net, work, CORE2), '10.10.0.42');
    assert.equal(await lease(net, work, CORE1), '10.10.0.11');
    assert.match(await curl(net, `http://${AGENT_IP}:8080/ipxe/52-54-00-10-00-01`), /^kernel /m);
    assert.deepEqual(await tftpGet(net, work, 'undionly.kpxe'), await readFile(IPXE));
    const { stdout: ra } = await net.exec(
      net.b,
      'timeout',
      ['20', 'tcpdump', '-i', net.ifB, '-n', '-c', '1', '-v', 'icmp6 and ip6[40] == 134'],
      25_000,
    );
    assert.match(ra, /router advertisement/);
    assert.match(ra, /prefix info option .*: fd77::\/64, Flags \[onlink, auto\]/);
    assert.match(ra, /router lifetime 0s/, 'not a default router');
    await new Promise((resolve) => setTimeout(resolve, 500));
    const outages = agent
      .log()
      .split('\n')
      .filter((l) => l.includes('model feed unreachable'));
    assert.equal(outages.length, 1, 'one line per outage, not one per poll');
    assert.ok(agent.log().includes('Temporal unreachable'));
    // Events of the armed host wait on disk for Temporal.
    assert.match(await readFile(path.join(stateDir, 'events.jsonl'), 'utf8'), new RegExp(`"mac":"${CORE1}"`));
    const radvdPid = Number((await readFile(path.join(stateDir, 'radvd.pid'), 'utf8')).trim());
    assert.equal(await agent.stop(), 0);
    assert.throws(() => process.kill(radvdPid, 0), 'radvd stops with the agent');
  },
);

test('a bad agent configuration is one line on stderr and exit code 2', { timeout: 120_000 }, async (t) => {
  const work = await mkdtemp(path.join(tmpdir(), 'vq-h2-config-'));
  t.after(() => rm(work, { recursive: true, force: true }));
  const { model } = await validateSot(sotMin);
  assert.ok(model);
  const store = new FileModelStore(path.join(work, 'store'));
  await store.putRevision('c1', model);
  await store.setApplied('c1');
  const base = [
    '--site',
    'lab1',
    '--state-dir',
    path.join(work, 'state'),
    '--temporal-address',
    '127.0.0.1:1',
  ];
  // Checked when the options are parsed.
  const parseCases: [string[], RegExp][] = [
    [['--router-advertisements'], /--router-advertisements needs --boot-interface/],
    [['--model-dir', work, '--server', 'https://vaquero.example.net'], /give either --model-dir or --server/],
    [['--http-port', '99999'], /the HTTP port must be a port number/],
    [['--boot-address', '10.0.0'], /the boot address must be an IPv4 address/],
    [['--no-such-option'], /Unknown option '--no-such-option'/],
  ];
  for (const [args, expected] of parseCases)
    assert.throws(() => agentConfig([...base, ...args], {}), expected);
  // Checked when the agent starts: the real process, its last line and its exit code.
  const cases: [string[], RegExp][] = [
    [
      ['--router-advertisements'],
      /^vaquero agent: routerAdvertisements: --router-advertisements needs --boot-interface$/,
    ],
    [
      ['--server', 'https://127.0.0.1:1', '--token-file', path.join(work, 'none')],
      /^vaquero agent: cannot read --token-file/,
    ],
    [
      [
        '--model-dir',
        path.join(work, 'store'),
        '--tftp-root',
        path.join(work, 'no-ipxe'),
        '--http-port',
        '0',
      ],
      /^vaquero agent: the TFTP root \S+ is not a directory \(apt-get install ipxe, or pass --tftp-root\)$/,
    ],
  ];
  for (const [args, expected] of cases) {
    // --no-dhcp: port 67 needs the test's own namespace, and the check comes before it anyway.
    const child = spawn(process.execPath, ['bin/vaquero.mjs', 'agent', ...base, '--no-dhcp', ...args], {
      cwd: repoRoot,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    const lines = stderr.trim().split('\n');
    assert.equal(code, 2, `${args.join(' ')}: ${stderr}`);
    assert.match(lines.at(-1) ?? '', expected, args.join(' '));
    assert.ok(!/\n\s+at /.test(stderr), `no stack trace: ${stderr}`);
  }
});

test(
  'a remote agent gets its model from the server over HTTPS, heartbeats, and serves from cache when the server is gone',
  { timeout: 180_000 },
  async (t) => {
    const work = await mkdtemp(path.join(tmpdir(), 'vq-h2-remote-'));
    t.after(() => rm(work, { recursive: true, force: true }));
    const io: Io = { out: () => undefined, err: () => undefined, cwd: () => work };
    assert.equal(await certsCommand(['--out', 'certs'], io), 0);
    const { model } = await validateSot(exampleSot);
    assert.ok(model);
    const store = new FileModelStore(path.join(work, 'store'));
    await store.putRevision('c1', model);
    await store.setApplied('c1');
    const api = agentApp(store);
    const tls = {
      cert: await readFile(path.join(work, 'certs/server.crt'), 'utf8'),
      key: await readFile(path.join(work, 'certs/server.key'), 'utf8'),
    };
    const server = await listen(api.app, { listen: { host: '127.0.0.1', port: 0 } }, tls);
    let serverUp = true;
    t.after(() => (serverUp ? server.close() : undefined));
    await writeFile(path.join(work, 'token'), `${AGENT_TOKENS.fra1}\n`);
    const args = [
      'agent',
      '--site',
      'fra1',
      '--state-dir',
      path.join(work, 'state'),
      '--agent-name',
      'fra1-agent-a',
    ];
    args.push('--server', `https://localhost:${server.port}`, '--token-file', path.join(work, 'token'));
    args.push('--ca', path.join(work, 'certs/ca.crt'), '--model-poll-ms', '200', '--heartbeat-ms', '200');
    // Loopback only: no DHCP, TFTP on a free port, HTTP on any port (read from the log).
    args.push('--no-dhcp', '--no-tftp', '--http-host', '127.0.0.1', '--http-port', '0');
    args.push('--temporal-address', '127.0.0.1:1');
    const start = async () => {
      const child = spawn(process.execPath, ['bin/vaquero.mjs', ...args], {
        cwd: repoRoot,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let log = '';
      child.stderr.on('data', (d: Buffer) => (log += d.toString()));
      const port = await new Promise<number>((resolve, reject) => {
        child.stderr.on('data', () => {
          const m = /"msg":"HTTP on 127\.0\.0\.1:(\d+)"/.exec(log);
          if (m) resolve(Number(m[1]));
        });
        child.once('exit', (code) => reject(new Error(`agent exited (${code}): ${log}`)));
      });
      const exited = new Promise((resolve) => child.once('exit', resolve));
      t.after(() => child.kill('SIGKILL'));
      return { port, log: () => log, stop: () => (child.kill('SIGTERM'), exited) };
    };

    let agent = await start();
    const chain = async (port: number) => {
      const res = await fetch(`http://127.0.0.1:${port}/boot.ipxe`);
      return res.text();
    };
    assert.match(await chain(agent.port), /chain --autofree http:\/\/10\.20\.0\.5:8080\/ipxe\//);
    await waitFor(() => api.registry.site('fra1').agents[0]?.agent === 'fra1-agent-a', 'the heartbeat');
    assert.equal(await agent.stop(), 0);

    await server.close();
    serverUp = false;
    agent = await start();
    assert.match(await chain(agent.port), /chain --autofree http:\/\/10\.20\.0\.5:8080\/ipxe\//);
    assert.match(agent.log(), /serving cached model.*"commit":"c1"/);
    await waitFor(() => /heartbeat failing/.test(agent.log()), 'the heartbeat failure');
    await new Promise((resolve) => setTimeout(resolve, 600));
    assert.equal(
      agent
        .log()
        .split('\n')
        .filter((l) => l.includes('model feed unreachable')).length,
      1,
    );
    assert.equal(
      agent
        .log()
        .split('\n')
        .filter((l) => l.includes('heartbeat failing')).length,
      1,
    );
    assert.equal(await agent.stop(), 0);
  },
);
