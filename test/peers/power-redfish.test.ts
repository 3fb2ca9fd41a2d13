// The Redfish power driver against sushy-emulator (PyPI sushy-tools, installed by
// scripts/install-sushy.sh) with its fake systems driver, on 127.0.0.1 over HTTPS with a self-signed
// certificate and a bcrypt htpasswd file. Power changes are read back from the emulator's side: its
// log names the ResetType it was sent, and a plain second request reads PowerState.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import tls from 'node:tls';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { createSecretResolver } from '../../activities/jobs/secrets';
import { PowerError } from '../../activities/power/errors';
import type { PowerErrorKind } from '../../activities/power/errors';
import { createRedfishPower } from '../../activities/power/redfish-power';
import type { RedfishPowerDeps } from '../../activities/power/redfish-power';
import { RedfishBmcSchema } from '../../schemas/host';
import { freePort } from '../helpers/jobs-fixtures';

const run = promisify(execFile);
const EMULATOR =
  process.env.SUSHY_EMULATOR ??
  path.join(process.env.VAQUERO_CACHE ?? '/var/cache/vaquero', 'sushy-venv/bin/sushy-emulator');
const MISSING = existsSync(EMULATOR) ? undefined : `${EMULATOR} not found (bash scripts/install-sushy.sh)`;
const IN_CI = Boolean(process.env.CI) && process.env.CI !== 'false';
const PASSWORD = 'lasso-7-Mesquite';
const WRONG_PASSWORD = 'not-the-lasso';
const secrets = createSecretResolver({ BMC_PASSWORD: PASSWORD, WRONG_PASSWORD });

type Json = Record<string, unknown>;
interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}
interface Emulator {
  url: string;
  /** The emulator's own view: a request with the right credentials, trusting its certificate. */
  send(method: string, path: string, body?: string, auth?: string): Promise<Reply>;
  get(path: string): Promise<Json>;
  log(): string;
  stop(): Promise<void>;
}
interface FakeSystem {
  uuid: string;
  name: string;
  power_state: 'On' | 'Off';
}

const system = (name: string, power: 'On' | 'Off'): FakeSystem => ({
  uuid: randomUUID(),
  name,
  power_state: power,
});
const node1 = system('node-1', 'Off');
const rack = {
  on: system('on', 'Off'),
  off: system('off', 'On'),
  cycle: system('cycle', 'On'),
  cycleOff: system('cycle-off', 'Off'),
  soft: system('soft', 'On'),
  steady: system('steady', 'On'),
};

let dir = '';
let cert = '';
let single: Emulator;
let several: Emulator;
const running: Emulator[] = [];

const driver = (url: string, bmc: Json = {}, deps: Partial<RedfishPowerDeps> = {}) =>
  createRedfishPower(
    RedfishBmcSchema.parse({
      type: 'redfish',
      address: url,
      username: 'admin',
      password: { env: 'BMC_PASSWORD' },
      ...bmc,
    }),
    { resolveSecret: secrets, ca: cert, timeoutMs: 10_000, ...deps },
  );

// A certificate for 127.0.0.1 that nothing trusts unless told to.
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'vaquero-redfish-'));
  cert = path.join(dir, 'cert.pem');
  const request =
    'req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=127.0.0.1';
  const files = ['-keyout', path.join(dir, 'key.pem'), '-out', cert];
  await run('openssl', [...request.split(' '), ...files, '-addext', 'subjectAltName=IP:127.0.0.1']);
});
after(() => rm(dir, { recursive: true, force: true }));

/** sushy accepts bcrypt entries only; the venv that runs it has bcrypt. */
async function writeAuthFile(): Promise<void> {
  const python = path.join(path.dirname(EMULATOR), 'python');
  const hash = 'import bcrypt, sys; print(bcrypt.hashpw(sys.argv[1].encode(), bcrypt.gensalt(4)).decode())';
  const { stdout } = await run(python, ['-c', hash, PASSWORD]);
  await writeFile(path.join(dir, 'htpasswd'), `admin:${stdout.trim()}\n`);
}

async function startEmulator(name: string, systems: FakeSystem[]): Promise<Emulator> {
  const port = await freePort();
  const config = path.join(dir, `${name}.py`);
  const fake = systems.map((s) => ({ ...s, external_notifier: false, nics: [] }));
  await writeFile(
    config,
    [
      'import json, logging',
      // INFO makes the emulator log each reset it is sent, with its ResetType.
      'logging.basicConfig(level=logging.INFO)',
      "SUSHY_EMULATOR_LISTEN_IP = '127.0.0.1'",
      `SUSHY_EMULATOR_LISTEN_PORT = ${port}`,
      'SUSHY_EMULATOR_FAKE_DRIVER = True',
      `SUSHY_EMULATOR_FAKE_SYSTEMS = json.loads(${JSON.stringify(JSON.stringify(fake))})`,
      // Without it the fake driver keeps its machines in a shared /tmp/sushy-emulator across runs.
      `SUSHY_EMULATOR_STATE_DIR = ${JSON.stringify(path.join(dir, `${name}-state`))}`,
      `SUSHY_EMULATOR_SSL_CERT = ${JSON.stringify(cert)}`,
      `SUSHY_EMULATOR_SSL_KEY = ${JSON.stringify(path.join(dir, 'key.pem'))}`,
      `SUSHY_EMULATOR_AUTH_FILE = ${JSON.stringify(path.join(dir, 'htpasswd'))}`,
      '',
    ].join('\n'),
  );
  const child = spawn(EMULATOR, ['--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (chunk: Buffer) => (log += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const ca = await readFile(cert);
  const url = `https://127.0.0.1:${port}`;
  const basic = `admin:${PASSWORD}`;
  const send = (method: string, p: string, body?: string, auth = basic) =>
    new Promise<Reply>((resolve, reject) => {
      const req = https.request(
        new URL(p, url),
        { method, ca, auth, headers: { 'Content-Type': 'application/json' } },
        (res) => {
          let text = '';
          res.on('data', (chunk: Buffer) => (text += chunk.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  const emulator: Emulator = {
    url,
    send,
    get: async (p) => JSON.parse((await send('GET', p)).body) as Json,
    log: () => log,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
  running.push(emulator);
  for (const started = Date.now(); ; await sleep(100)) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`sushy-emulator exited with ${child.exitCode}:\n${log}`);
    if (
      await send('GET', '/redfish/v1/').then(
        (r) => r.status === 200,
        () => false,
      )
    )
      return emulator;
    if (Date.now() - started > 20_000) throw new Error(`sushy-emulator did not answer within 20 s:\n${log}`);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits for the emulator to report `want`: the fake driver applies a reset 1 to 11 s later. */
async function powerStateBecomes(emulator: Emulator, s: FakeSystem, want: string): Promise<void> {
  let seen: unknown;
  for (const started = Date.now(); Date.now() - started < 15_000; await sleep(250)) {
    seen = (await emulator.get(`/redfish/v1/Systems/${s.uuid}`)).PowerState;
    if (seen === want) return;
  }
  assert.fail(`${s.name}: PowerState is still ${String(seen)}, not ${want}`);
}

const resetsSent = (emulator: Emulator, s: FakeSystem) =>
  [...emulator.log().matchAll(new RegExp(`System "${s.uuid}" power state set to "(\\w+)"`, 'g'))].map(
    (m) => m[1],
  );

async function rejectsWith(
  promise: Promise<unknown>,
  kind: PowerErrorKind,
  retryable: boolean,
  message: RegExp,
) {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof PowerError, `not a PowerError: ${String(err)}`);
    assert.equal(err.kind, kind, err.message);
    assert.equal(err.retryable, retryable, err.message);
    assert.match(err.message, message);
    assert.ok(
      !err.message.includes(PASSWORD) && !err.message.includes(WRONG_PASSWORD),
      'password in the message',
    );
    return true;
  });
}

test('sushy-emulator is installed where CI runs', { skip: !IN_CI }, () => {
  assert.equal(MISSING, undefined, `${MISSING}; CI must install it`);
});

describe('Redfish power against sushy-emulator', { skip: MISSING ?? false }, () => {
  before(async () => {
    await writeAuthFile();
    [single, several] = await Promise.all([
      startEmulator('single', [node1]),
      startEmulator('several', Object.values(rack)),
    ]);
  });
  after(() => Promise.all(running.map((emulator) => emulator.stop())));

  test('reads the power state of the only system the BMC has', async () => {
    assert.equal(await driver(single.url).powerState(), 'off');
    assert.equal(await driver(several.url, { system_id: rack.steady.uuid }).powerState(), 'on');
  });

  describe('power operations, seen from the emulator', { concurrency: true }, () => {
    const cases = [
      ['powerOn', rack.on, 'On', 'On'],
      ['powerOff', rack.off, 'ForceOff', 'Off'],
      // sushy advertises no PowerCycle, so the driver falls back to ForceRestart.
      ['powerCycle', rack.cycle, 'ForceRestart', 'On'],
      ['powerCycle', rack.cycleOff, 'On', 'On'],
      ['softOff', rack.soft, 'GracefulShutdown', 'Off'],
    ] as const;
    for (const [operation, s, resetType, final] of cases)
      test(`${operation} of a machine that is ${s.power_state} sends ${resetType}`, async () => {
        await driver(several.url, { system_id: s.uuid })[operation]();
        await powerStateBecomes(several, s, final);
        // Read after the emulator has answered later requests, so its log has come through the pipe.
        assert.deepEqual(resetsSent(several, s), [resetType]);
      });

    test('powerOn of a machine that is on sends nothing; a system named, not numbered, is found', async () => {
      await driver(several.url, { system_id: rack.steady.name }).powerOn();
      assert.deepEqual(resetsSent(several, rack.steady), []);
    });
  });

  test('sets the next boot to PXE (and back to disk) with a boot override', async () => {
    const bootOf = async () => (await single.get(`/redfish/v1/Systems/${node1.uuid}`)).Boot as Json;
    await driver(single.url).setNextBoot('pxe');
    // The fake driver reports every override as Continuous, whatever it was sent.
    assert.equal((await bootOf()).BootSourceOverrideTarget, 'Pxe');
    assert.match(single.log(), new RegExp(`Set boot device to "Pxe" for system "${node1.uuid}"`));
    await driver(single.url).setNextBoot('disk');
    assert.equal((await bootOf()).BootSourceOverrideTarget, 'Hdd');
  });

  test('a wrong password is an auth failure, not retried', async () => {
    const started = Date.now();
    const wrong = driver(single.url, { password: { env: 'WRONG_PASSWORD' } });
    await rejectsWith(wrong.powerState(), 'auth', false, /HTTP 401: Incorrect username or password/);
    assert.ok(Date.now() - started < 2000, 'a 401 must not be retried');
  });

  test('a BMC with several systems and no system_id is a configuration fault', async () => {
    await rejectsWith(
      driver(several.url).powerState(),
      'bmc-error',
      false,
      /has 6 systems .*; set system_id/,
    );
  });

  test('the self-signed certificate is refused unless trusted or verification is off', async () => {
    const untrusted = driver(single.url, {}, { ca: undefined });
    await rejectsWith(
      untrusted.powerState(),
      'auth',
      false,
      /TLS certificate is not trusted \(DEPTH_ZERO_SELF_SIGNED_CERT/,
    );
    assert.equal(await driver(single.url, { verify_tls: false }, { ca: undefined }).powerState(), 'off');
    assert.equal(await driver(single.url, {}, { ca: cert }).powerState(), 'off');
  });

  test('a session is opened, used for every request and deleted, where the BMC has sessions', async (t) => {
    const proxy = await sessionProxy(single);
    t.after(() => proxy.close());
    const bmc = driver(proxy.url, {}, { ca: undefined });
    assert.equal(await bmc.powerState(), 'off');
    await bmc.setNextBoot('pxe');
    assert.equal(proxy.created.length, 2);
    assert.deepEqual(proxy.deleted, proxy.created);
    assert.equal(proxy.refused, 0, 'a request went without the session token');
    const wrong = driver(proxy.url, { password: { env: 'WRONG_PASSWORD' } }, { ca: undefined });
    await rejectsWith(wrong.powerState(), 'auth', false, /HTTP 401/);
  });
});

describe('Redfish power against BMCs that cannot be reached', () => {
  test('a closed port is unreachable, retryable, reported within the timeout', async () => {
    const port = await freePort();
    const started = Date.now();
    const bmc = driver(`https://127.0.0.1:${port}`, {}, { ca: undefined, timeoutMs: 3000, retries: 2 });
    await rejectsWith(bmc.powerState(), 'unreachable', true, /BMC unreachable \(ECONNREFUSED\)/);
    assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
  });

  const stalls = [
    [false, /accepted the connection but did not complete the TLS handshake within 800 ms/],
    [true, /did not answer within 800 ms/],
  ] as const;
  for (const [speaksTls, message] of stalls)
    test(`a BMC that ${speaksTls ? 'completes TLS' : 'accepts TCP'} but never answers times out at the timeout`, async (t) => {
      const server = speaksTls
        ? tls.createServer({ key: await readFile(path.join(dir, 'key.pem')), cert: await readFile(cert) })
        : net.createServer();
      const sockets = new Set<net.Socket>();
      server.on('connection', (socket: net.Socket) => sockets.add(socket));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      t.after(() => {
        for (const socket of sockets) socket.destroy();
        server.close();
      });
      const { port } = server.address() as net.AddressInfo;
      const started = Date.now();
      const bmc = driver(`https://127.0.0.1:${port}`, {}, { timeoutMs: 800, retries: 2 });
      await rejectsWith(bmc.powerState(), 'timeout', true, message);
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 750 && elapsed < 1500, `took ${elapsed} ms`);
    });
});

/**
 * sushy has no SessionService, so this puts one in front of it: plain HTTP on 127.0.0.1 that issues
 * tokens for the right credentials, forwards requests carrying a live token with basic auth, and
 * refuses any other (basic auth included).
 */
async function sessionProxy(emulator: Emulator) {
  const sessions = new Map<string, string>();
  const created: string[] = [];
  const deleted: string[] = [];
  let refused = 0;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on(
      'end',
      () =>
        void answer(req, body).then(({ status, headers, body: out }) =>
          res.writeHead(status, headers).end(out),
        ),
    );
  });
  const answer = async (req: http.IncomingMessage, body: string): Promise<Reply> => {
    const url = req.url ?? '/';
    const token = String(req.headers['x-auth-token'] ?? '');
    if (req.method === 'POST' && url === '/redfish/v1/SessionService/Sessions') {
      const { UserName, Password } = JSON.parse(body) as { UserName: string; Password: string };
      const check = await emulator.send('GET', '/redfish/v1/Systems', undefined, `${UserName}:${Password}`);
      if (check.status !== 200) return { status: check.status, headers: {}, body: check.body };
      const id = `/redfish/v1/SessionService/Sessions/${created.length + 1}`;
      const issued = randomUUID();
      sessions.set(issued, id);
      created.push(id);
      return { status: 201, headers: { 'x-auth-token': issued, location: id }, body: '{}' };
    }
    if (url === '/redfish/v1/') {
      const root = await emulator.get(url);
      const links = { Sessions: { '@odata.id': '/redfish/v1/SessionService/Sessions' } };
      return { status: 200, headers: {}, body: JSON.stringify({ ...root, Links: links }) };
    }
    if (!sessions.has(token)) {
      refused++;
      return { status: 401, headers: {}, body: '{"error":{"message":"no session"}}' };
    }
    if (req.method === 'DELETE' && sessions.get(token) === url) {
      sessions.delete(token);
      deleted.push(url);
      return { status: 204, headers: {}, body: '' };
    }
    const reply = await emulator.send(req.method ?? 'GET', url, body || undefined);
    const { location, etag } = reply.headers;
    return { ...reply, headers: { ...(location ? { location } : {}), ...(etag ? { etag } : {}) } };
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    created,
    deleted,
    get refused() {
      return refused;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
