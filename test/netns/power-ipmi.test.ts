// The IPMI driver against OpenIPMI's ipmi_sim, on loopback and across network namespaces, through the real ipmitool. The emulated
// chassis is a shell script keeping the machine's power and boot device in files, so each test
// asserts what the machine saw, not what ipmitool printed.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync } from 'node:fs';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { createSecretResolver } from '../../activities/jobs/secrets';
import { toApplicationFailure } from '../../activities/power/errors';
import { createIpmiPower, type IpmiPowerDeps } from '../../activities/power/ipmi-power';
import { IpmiBmcSchema } from '../../schemas/host';
import { tempDir } from '../helpers/jobs-fixtures';
import { powerFailure } from '../helpers/power';
import { createNetnsPair, netnsProblem } from '../../cli/lab/netns';

const PASSWORD = 'vq-Bmc-Pass-4711';
const TOOLS = ['/usr/bin/ipmitool', '/usr/bin/ipmi_sim'];

// ipmi_sim calls it with `get power boot` and `set <what> <value>`; it must answer within ~1 s.
const CHASSIS = `#!/bin/sh
cd "$(dirname "$0")"
echo "$*" >> calls.log
if [ "$1" = get ]; then
  shift
  for what in "$@"; do
    case "$what" in
      power) echo "power:$(cat power)" ;;
      boot) echo "boot:$(cat boot)" ;;
    esac
  done
  exit 0
fi
shift
while [ $# -ge 2 ]; do
  case "$1" in
    power)
      if [ "$2" = 1 ] && [ "$(cat power)" = 0 ]; then echo $(( $(cat boots) + 1 )) > boots; fi
      echo "$2" > power ;;
    reset) echo $(( $(cat boots) + 1 )) > boots ;;
    shutdown) echo 0 > power; echo $(( $(cat shutdowns) + 1 )) > shutdowns ;;
    boot) echo "$2" > boot ;;
  esac
  shift 2
done
`;

interface Sim {
  port: number;
  /** A file of the emulated machine: power (1/0), boot, boots (power-ons and resets), shutdowns. */
  read(file: string): Promise<string>;
  write(file: string, value: string): Promise<void>;
}

async function freeUdpPort(): Promise<number> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(resolve));
  return port;
}

/** Starts ipmi_sim on 127.0.0.1, or skips on a developer machine without OpenIPMI (fails in CI). */
async function startSimOrSkip(
  t: TestContext,
  where?: { address: string; port: number; spawner: Spawner; probe: (sim: Sim) => ReturnType<typeof driver> },
): Promise<Sim | undefined> {
  const missing = TOOLS.filter((tool) => !existsSync(tool));
  if (missing.length > 0) {
    const reason = `${missing.join(', ')} not found (apt-get install openipmi ipmitool)`;
    if (process.env.CI && process.env.CI !== 'false') throw new Error(`${reason}; CI must provide it`);
    t.skip(reason);
    return undefined;
  }
  const dir = await tempDir(t);
  const sim: Sim = {
    port: where?.port ?? (await freeUdpPort()),
    read: async (file) => (await readFile(path.join(dir, file), 'utf8')).trim(),
    write: (file, value) => writeFile(path.join(dir, file), `${value}\n`),
  };
  for (const [file, value] of [
    ['power', '1'],
    ['boot', 'default'],
    ['boots', '0'],
    ['shutdowns', '0'],
  ] as const)
    await sim.write(file, value);
  const chassis = path.join(dir, 'chassis.sh');
  await writeFile(chassis, CHASSIS);
  await chmod(chassis, 0o755);
  await writeFile(path.join(dir, 'lan.conf'), lanConf(sim.port, chassis, where?.address));
  await writeFile(
    path.join(dir, 'bmc.emu'),
    [
      'mc_setbmc 0x20',
      'mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr',
      'sel_enable 0x20 1000 0x0a',
      'mc_enable 0x20',
      '',
    ].join('\n'),
  );
  await startDaemon(t, dir, sim, where?.spawner, where?.probe(sim));
  return sim;
}

function lanConf(port: number, chassis: string, address = '127.0.0.1'): string {
  return [
    'name "vaquero-test"',
    'set_working_mc 0x20',
    'startlan 1',
    `  addr ${address} ${port}`,
    '  priv_limit admin',
    '  allowed_auths_admin none md2 md5 straight',
    '  guid a123456789abcdefa123456789abcdef',
    'endlan',
    `chassis_control "${chassis}"`,
    `user 2 true "admin" "${PASSWORD}" admin 10 none md2 md5 straight`,
    '',
  ].join('\n');
}

type Spawner = (cmd: string, args: string[], opts: SpawnOptions) => ChildProcess;

async function startDaemon(
  t: TestContext,
  dir: string,
  sim: Sim,
  spawner: Spawner = spawn,
  probe = driver(sim, { retries: 0, timeoutMs: 1000 }),
): Promise<void> {
  const args = ['-n', '-p', '-c', 'lan.conf', '-f', 'bmc.emu', '-s', path.join(dir, 'state')];
  const daemon = spawner('/usr/bin/ipmi_sim', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  daemon.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const exited = new Promise<void>((resolve) => daemon.once('exit', () => resolve()));
  t.after(async () => {
    daemon.kill('SIGTERM');
    await exited;
  });
  const deadline = Date.now() + 5000;
  for (;;) {
    try {
      await probe.powerState();
      return;
    } catch (err) {
      if (daemon.exitCode !== null || Date.now() > deadline)
        throw new Error(`ipmi_sim did not answer: ${String(err)}\n${log}`);
    }
  }
}

function driver(
  sim: { port: number },
  deps: Partial<IpmiPowerDeps> = {},
  password = PASSWORD,
  address = '127.0.0.1',
) {
  const bmc = IpmiBmcSchema.parse({
    type: 'ipmi',
    address,
    port: sim.port,
    username: 'admin',
    password: { env: 'BMC_PASSWORD' },
  });
  return createIpmiPower(bmc, {
    resolveSecret: createSecretResolver({ BMC_PASSWORD: password }),
    timeoutMs: 10_000,
    ...deps,
  });
}

async function until(check: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}

test('power status is what the emulated machine says', async (t) => {
  const sim = await startSimOrSkip(t);
  if (!sim) return;
  const bmc = driver(sim);
  assert.equal(await bmc.powerState(), 'on');
  await sim.write('power', '0');
  assert.equal(await bmc.powerState(), 'off');
});

test('power on and off switch the machine', async (t) => {
  const sim = await startSimOrSkip(t);
  if (!sim) return;
  const bmc = driver(sim);
  await bmc.powerOff();
  assert.equal(await sim.read('power'), '0');
  await bmc.powerOn();
  assert.equal(await sim.read('power'), '1');
  assert.equal(await sim.read('boots'), '1');
  // On when already on: no second boot.
  await bmc.powerOn();
  assert.equal(await sim.read('boots'), '1');
});

test('a power cycle turns the machine off, then on again once', async (t) => {
  const sim = await startSimOrSkip(t);
  if (!sim) return;
  await driver(sim).powerCycle();
  // ipmi_sim powers off at once and back on about a second later.
  await until(async () => (await sim.read('boots')) === '1', 5000);
  assert.equal(await sim.read('power'), '1');
  assert.match(await sim.read('calls.log'), /set power 0\n(.*\n)*set power 1/);
});

test('soft off asks the machine to shut down', async (t) => {
  const sim = await startSimOrSkip(t);
  if (!sim) return;
  const bmc = driver(sim);
  await bmc.softOff();
  assert.equal(await sim.read('shutdowns'), '1');
  assert.equal(await bmc.powerState(), 'off');
});

test('the next boot device is set on the machine', async (t) => {
  const sim = await startSimOrSkip(t);
  if (!sim) return;
  const bmc = driver(sim);
  await bmc.setNextBoot('pxe');
  assert.equal(await sim.read('boot'), 'pxe');
  await bmc.setNextBoot('disk');
  assert.equal(await sim.read('boot'), 'default');
});

test('a wrong password fails at once as auth, not retryable, without the password', async (t) => {
  const sim = await startSimOrSkip(t);
  if (!sim) return;
  const wrong = 'vq-Wrong-Pass-0815';
  const started = Date.now();
  const err = await powerFailure(driver(sim, { timeoutMs: 5000, retries: 2 }, wrong).powerState());
  const elapsed = Date.now() - started;
  assert.equal(err.kind, 'auth');
  assert.equal(err.retryable, false);
  assert.match(
    err.message,
    /^ipmi admin@127\.0\.0\.1:\d+: chassis power status: the BMC refused the password/,
  );
  assert.ok(elapsed < 2000, `took ${elapsed} ms`);
  const failure_ = toApplicationFailure(err);
  assert.equal(failure_.type, 'PowerAuth');
  assert.equal(failure_.nonRetryable, true);
  for (const text of [err.message, failure_.message, String(err.stack)]) {
    assert.ok(!text.includes(wrong) && !text.includes(PASSWORD), `password in: ${text}`);
  }
});

test('a BMC that never answers fails as retryable within the configured timeout', async () => {
  // Nothing listens on this UDP port; ipmitool gets no reply, as from a switched-off BMC.
  const silent = { port: await freeUdpPort() };
  // ipmitool's own give-up (no reply in 2 x 1 s), once retried; then our kill timer, which comes first.
  for (const { timeoutMs, retries, kind, atLeast } of [
    { timeoutMs: 6000, retries: 1, kind: 'unreachable', atLeast: 4000 },
    { timeoutMs: 1200, retries: 0, kind: 'timeout', atLeast: 1200 },
  ]) {
    const started = Date.now();
    const err = await powerFailure(driver(silent, { timeoutMs, retries }).powerCycle());
    const elapsed = Date.now() - started;
    assert.equal(err.kind, kind, err.message);
    assert.equal(err.retryable, true);
    assert.equal(toApplicationFailure(err).nonRetryable, false);
    assert.ok(elapsed >= atLeast - 100 && elapsed <= timeoutMs + 500, `${kind}: took ${elapsed} ms`);
    assert.ok(!err.message.includes(PASSWORD), err.message);
  }
});

test('a missing ipmitool is unsupported, not retried', async () => {
  const err = await powerFailure(driver({ port: 623 }, { ipmitool: '/nonexistent/ipmitool' }).powerState());
  assert.equal(err.kind, 'unsupported');
  assert.equal(err.retryable, false);
  assert.match(err.message, /ipmitool is not installed on this agent/);
});

test('across network namespaces: ipmitool in one, the BMC on its own address in the other', async (t) => {
  const unusable = await netnsProblem();
  if (unusable) {
    if (process.env.CI && process.env.CI !== 'false') throw new Error(`${unusable}; CI must allow it`);
    return t.skip(unusable);
  }
  const pair = await createNetnsPair({ tag: 'vqd' });
  t.after(() => pair.close());
  await pair.exec(pair.a, 'ip', ['addr', 'add', '10.231.7.1/30', 'dev', pair.ifA]);
  await pair.exec(pair.b, 'ip', ['addr', 'add', '10.231.7.2/30', 'dev', pair.ifB]);
  // The agent side: ipmitool run inside namespace a, as the agent would run it on its own network.
  const dir = await tempDir(t);
  const wrapper = path.join(dir, 'ipmitool');
  await writeFile(wrapper, `#!/bin/sh\nexec /usr/sbin/ip netns exec ${pair.a} /usr/bin/ipmitool "$@"\n`);
  await chmod(wrapper, 0o755);
  const bmcDriver = (sim: { port: number }) => driver(sim, { ipmitool: wrapper }, PASSWORD, '10.231.7.2');

  const sim = await startSimOrSkip(t, {
    address: '10.231.7.2',
    port: 623,
    spawner: (cmd, args, opts) => pair.spawn(pair.b, cmd, args, opts),
    probe: bmcDriver,
  });
  if (!sim) return;
  const power = bmcDriver(sim);
  assert.equal(await power.powerState(), 'on');
  await power.setNextBoot('pxe');
  assert.equal(await sim.read('boot'), 'pxe');
  await power.powerCycle();
  await until(async () => (await sim.read('boots')) !== '0', 5000);
  assert.equal(await sim.read('boots'), '1', 'cycled once, as the emulator saw it');
});
