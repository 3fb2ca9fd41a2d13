import assert from 'node:assert/strict';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { createCommandPower } from '../../activities/power/command-power';
import { toApplicationFailure } from '../../activities/power/errors';
import type { PowerTarget } from '../../activities/power/power-driver';
import { CommandBmcSchema } from '../../schemas/host';
import { eventually, processGone, tempDir } from '../helpers/jobs-fixtures';
import { powerFailure } from '../helpers/power';

const target: PowerTarget = { site: 'lab', host: 'node-1', mac: '52:54:00:12:34:56' };

/** A power script in a temp dir; it logs each call with its environment to calls.log beside it. */
async function script(t: TestContext, body: string, timeout = '5s') {
  const dir = await tempDir(t);
  const file = path.join(dir, 'power.sh');
  await writeFile(
    file,
    `#!/bin/sh\necho "$* $VAQUERO_HOST $VAQUERO_SITE $VAQUERO_MAC [$VAQUERO_TEST_SECRET]" >> "${dir}/calls.log"\n${body}\n`,
  );
  await chmod(file, 0o755);
  const bmc = CommandBmcSchema.parse({ type: 'command', command: file, args: ['--pdu', 'rack 1'], timeout });
  return {
    driver: createCommandPower(target, bmc),
    calls: async () => (await readFile(path.join(dir, 'calls.log'), 'utf8')).trim().split('\n'),
  };
}

test('each operation calls the script with its action after the args, and the host in its env', async (t) => {
  process.env.VAQUERO_TEST_SECRET = 'agent-only';
  t.after(() => delete process.env.VAQUERO_TEST_SECRET);
  const { driver, calls } = await script(t, '[ "$3" = status ] && echo on; exit 0');
  await driver.powerState();
  await driver.powerOn();
  await driver.powerOff();
  await driver.powerCycle();
  await driver.softOff();
  await driver.setNextBoot('pxe');
  await driver.setNextBoot('disk');
  const env = 'node-1 lab 52:54:00:12:34:56 []';
  assert.deepEqual(
    await calls(),
    ['status', 'on', 'off', 'cycle', 'soft', 'bootdev-pxe', 'bootdev-disk'].map(
      (action) => `--pdu rack 1 ${action} ${env}`,
    ),
  );
});

test('status is the last line the script prints', async (t) => {
  for (const [printed, state] of [
    ['on', 'on'],
    ['warning: slow PDU\nOFF', 'off'],
    ['unknown\n\n', 'unknown'],
  ] as const) {
    const { driver } = await script(t, `printf '${printed.replace(/\n/g, '\\n')}'`);
    assert.equal(await driver.powerState(), state, printed);
  }
  const { driver } = await script(t, 'echo "power is probably on"');
  const err = await powerFailure(driver.powerState());
  assert.equal(err.kind, 'bmc-error');
  assert.equal(err.retryable, false);
  assert.match(err.message, /status: printed "power is probably on", not on, off or unknown$/);
});

test('a failing script is a retryable BMC error with its output; exit 3 is unsupported', async (t) => {
  const { driver } = await script(
    t,
    'echo "PDU outlet 7: connection refused" >&2; [ "$3" = bootdev-pxe ] && exit 3; exit 1',
  );
  const err = await powerFailure(driver.powerCycle());
  assert.equal(err.kind, 'bmc-error');
  assert.equal(err.retryable, true);
  assert.match(err.message, /power\.sh cycle: exited with status 1: PDU outlet 7: connection refused$/);
  assert.equal(toApplicationFailure(err).type, 'PowerBmcError');
  const unsupported = await powerFailure(driver.setNextBoot('pxe'));
  assert.equal(unsupported.kind, 'unsupported');
  assert.equal(toApplicationFailure(unsupported).nonRetryable, true);
});

test('a script that does not exist is unsupported, not retried', async () => {
  const bmc = CommandBmcSchema.parse({ type: 'command', command: '/nonexistent/power.sh' });
  const err = await powerFailure(createCommandPower(target, bmc).powerOn());
  assert.equal(err.kind, 'unsupported');
  assert.equal(err.retryable, false);
  assert.equal(err.message, '/nonexistent/power.sh on: not found');
});

test('a hanging script is killed, with its children, at the timeout from the SoT', async (t) => {
  const { driver } = await script(t, 'echo $$; sleep 30 & echo $!; wait', '1s');
  const started = Date.now();
  const err = await powerFailure(driver.powerOff());
  const elapsed = Date.now() - started;
  assert.equal(err.kind, 'timeout');
  assert.equal(err.retryable, true);
  assert.ok(elapsed >= 950 && elapsed < 2500, `took ${elapsed} ms`);
  const pids = err.message
    .replace(/^.*timed out after 1s: /, '')
    .split('; ')
    .map(Number);
  assert.equal(pids.length, 2, err.message);
  for (const pid of pids) assert.ok(await eventually(() => processGone(pid)), `process ${pid} still runs`);
});
