// The SSH driver against a real sshd on loopback. That sshd runs commands as root on this very
// machine: the reboot and poweroff commands are replaced by harmless ones that leave a trace.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { createSecretResolver } from '../../activities/jobs/secrets';
import { toApplicationFailure } from '../../activities/power/errors';
import { createSshPower, type SshPowerDeps } from '../../activities/power/ssh-power';
import { SshBmcSchema } from '../../schemas/host';
import { freePort } from '../helpers/jobs-fixtures';
import { powerFailure } from '../helpers/power';
import { startSshdOrSkip } from '../helpers/jobs-sshd';

function driver(port: number, key: string, deps: Partial<SshPowerDeps> = {}) {
  const bmc = SshBmcSchema.parse({
    type: 'ssh',
    address: '127.0.0.1',
    port,
    username: 'root',
    private_key: { env: 'SSH_KEY' },
  });
  return createSshPower(bmc, {
    resolveSecret: createSecretResolver({ SSH_KEY: key }),
    timeoutMs: 5000,
    ...deps,
  });
}

test('a host that answers over ssh is on; cycle and off run their commands on it', async (t) => {
  const sshd = await startSshdOrSkip(t);
  if (!sshd) return;
  const rebooted = path.join(sshd.dir, 'rebooted');
  const poweredOff = path.join(sshd.dir, 'powered-off');
  const host = driver(sshd.port, sshd.authorizedKey, {
    commands: { reboot: `touch ${rebooted}`, poweroff: `touch ${poweredOff}` },
  });
  assert.equal(await host.powerState(), 'on');
  await host.powerCycle();
  assert.ok(existsSync(rebooted), 'the reboot command did not run');
  assert.ok(!existsSync(poweredOff));
  await host.powerOff();
  assert.ok(existsSync(poweredOff), 'the poweroff command did not run');
});

test('a reboot that drops the connection before answering counts as done', async (t) => {
  const sshd = await startSshdOrSkip(t);
  if (!sshd) return;
  // Kills this login's own sshd process, as a host going down does; nothing else on the machine.
  const drop = 'kill -9 $PPID';
  const host = driver(sshd.port, sshd.authorizedKey, { commands: { reboot: drop, probe: drop } });
  await host.powerCycle();
  // The same drop where no reboot was asked for is no answer (proving the connection did drop).
  assert.equal(await host.powerState(), 'unknown');
});

test('a remote command that fails is a BMC error with its output', async (t) => {
  const sshd = await startSshdOrSkip(t);
  if (!sshd) return;
  const host = driver(sshd.port, sshd.authorizedKey, {
    commands: { reboot: 'echo "Failed to reboot: Access denied" >&2; exit 1' },
  });
  const err = await powerFailure(host.powerCycle());
  assert.equal(err.kind, 'bmc-error');
  assert.equal(err.retryable, false);
  assert.match(err.message, /exited with status 1: Failed to reboot: Access denied$/);
});

test('a key the host refuses is an auth error, also for the power state', async (t) => {
  const sshd = await startSshdOrSkip(t);
  if (!sshd) return;
  const host = driver(sshd.port, sshd.strangerKey);
  const err = await powerFailure(host.powerState());
  assert.equal(err.kind, 'auth');
  assert.equal(err.retryable, false);
  assert.match(err.message, /Permission denied \(publickey\)/);
  assert.ok(!err.message.includes('PRIVATE KEY'), err.message);
  assert.equal(toApplicationFailure(err).type, 'PowerAuth');
});

test('a host where nothing answers is in an unknown state, and cannot be cycled', async () => {
  const host = driver(await freePort(), 'not used');
  assert.equal(await host.powerState(), 'unknown');
  const err = await powerFailure(host.powerCycle());
  assert.equal(err.kind, 'unreachable');
  assert.equal(err.retryable, true);
  assert.match(err.message, /Connection refused/);
});

test('power on and the next boot device are unsupported over ssh, not retried', async () => {
  const host = driver(22, 'not used');
  for (const call of [host.powerOn(), host.setNextBoot('pxe')]) {
    const err = await powerFailure(call);
    assert.equal(err.kind, 'unsupported');
    assert.equal(err.retryable, false);
    assert.equal(toApplicationFailure(err).nonRetryable, true);
    assert.equal(toApplicationFailure(err).type, 'PowerUnsupported');
  }
});
