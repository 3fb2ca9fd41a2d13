// The lab's Redfish BMC (cli/lab/redfish-bmc.ts) driven by the product's Redfish driver, on
// loopback: its chassis is the real cli/lab/chassis-control, whose "QEMU" here is a sleeping shell
// named like one (a shell whose arguments name the QMP socket: chassis-control knows a machine's process by its QMP socket path).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createRedfishPower } from '../../activities/power/redfish-power';
import { RedfishBmcSchema } from '../../schemas/host';

const BMC = fileURLToPath(new URL('../../cli/lab/redfish-bmc.ts', import.meta.url));
const PASSWORD = 'lab-secret';

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  return port;
}

let dir = '';
let url = '';
let bmc: ChildProcess | undefined;

const driver = (password = PASSWORD) =>
  createRedfishPower(
    RedfishBmcSchema.parse({ type: 'redfish', address: url, username: 'admin', password: { env: 'P' } }),
    { resolveSecret: () => Promise.resolve(password), timeoutMs: 15_000 },
  );
const powerLog = async () =>
  (await readFile(path.join(dir, 'power.log'), 'utf8').catch(() => ''))
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split(' ').slice(1).join(' '));
const bootFile = async () => (await readFile(path.join(dir, 'boot'), 'utf8').catch(() => 'default\n')).trim();

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'vaquero-lab-redfish-'));
  const qmp = path.join(dir, 'qmp.sock');
  await writeFile(path.join(dir, 'qemu.json'), JSON.stringify(['sh', '-c', 'sleep 60; :', qmp]));
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  bmc = spawn(process.execPath, ['--import', 'tsx', BMC, '127.0.0.1', String(port), dir, 'lab-03', 'admin'], {
    env: { ...process.env, VAQUERO_LAB_BMC_PASSWORD: PASSWORD },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await once(bmc.stdout!, 'data');
});
after(async () => {
  bmc?.kill();
  const pid = Number((await readFile(path.join(dir, 'qemu.pid'), 'utf8').catch(() => '')).trim());
  // chassis-control starts the machine in its own session: the shell and its sleep go together.
  if (pid) process.kill(-pid, 'SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

describe('the lab Redfish BMC under the product driver', () => {
  test('power state, a one-time PXE override, a power cycle and off, each at the chassis', async () => {
    const power = driver();
    assert.equal(await power.powerState(), 'off');
    await power.setNextBoot('pxe');
    assert.equal(await bootFile(), 'pxe', 'the override reached the chassis');
    await power.powerCycle(); // off: powered on
    assert.equal(await power.powerState(), 'on');
    assert.equal(await bootFile(), 'default', 'a one-time override is spent by the boot it was set for');
    await power.powerCycle(); // on: PowerCycle, off then on
    await power.powerOff();
    assert.equal(await power.powerState(), 'off');
    assert.deepEqual(await powerLog(), [
      'boot pxe',
      'power 1',
      'boot default',
      'power 0',
      'power 1',
      'power 0',
    ]);
  });

  test('a wrong password is refused, and bad requests get Redfish errors, not a crash', async () => {
    await assert.rejects(driver('wrong').powerState(), /401|credential|auth/i);
    const res = await fetch(`${url}/redfish/v1/Systems/lab-03/Actions/ComputerSystem.Reset`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}` },
      body: '{"ResetType": "Explode"}',
    });
    assert.equal(res.status, 400);
    assert.match(JSON.stringify(await res.json()), /ResetType must be one of/);
    const huge = await fetch(`${url}/redfish/v1/SessionService/Sessions`, {
      method: 'POST',
      body: 'x'.repeat(200_000),
    }).catch(() => undefined);
    assert.ok(huge === undefined || huge.status === 413, 'a huge body is refused');
    const noAuth = await fetch(`${url}/redfish/v1/Systems`);
    assert.equal(noAuth.status, 401);
    assert.equal(await driver().powerState(), 'off', 'still serving');
  });
});
