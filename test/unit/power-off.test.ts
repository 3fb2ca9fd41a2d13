import assert from 'node:assert/strict';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { createCommandPower } from '../../activities/power/command-power';
import { powerOffGracefully } from '../../activities/power/power-off';
import { CommandBmcSchema } from '../../schemas/host';
import { tempDir } from '../helpers/jobs-fixtures';

/** A machine behind a power script: its state in a file; `soft` works only when the OS honours it. */
async function machine(t: TestContext, osHonoursSoft: boolean) {
  const dir = await tempDir(t);
  const state = path.join(dir, 'state');
  await writeFile(state, 'on\n');
  const file = path.join(dir, 'power.sh');
  const soft = osHonoursSoft ? `echo off > "${state}"` : 'true';
  await writeFile(
    file,
    `#!/bin/sh\necho "$1" >> "${dir}/calls.log"\ncase "$1" in\n` +
      `status) cat "${state}";;\noff) echo off > "${state}";;\non) echo on > "${state}";;\nsoft) ${soft};;\nesac\n`,
  );
  await chmod(file, 0o755);
  const bmc = CommandBmcSchema.parse({ type: 'command', command: file, timeout: '5s' });
  const driver = createCommandPower({ site: 'lab', host: 'node-1', mac: '52:54:00:12:34:56' }, bmc);
  return {
    driver,
    state: async () => (await readFile(state, 'utf8')).trim(),
    calls: async () => (await readFile(path.join(dir, 'calls.log'), 'utf8')).trim().split('\n'),
  };
}

test('an OS that shuts down on the soft request is never forced off', async (t) => {
  const m = await machine(t, true);
  const result = await powerOffGracefully(m.driver, { softTimeoutMs: 2_000, allowHard: true, pollMs: 100 });
  assert.deepEqual(result, { before: 'on', how: 'soft' });
  assert.equal(await m.state(), 'off');
  assert.ok(!(await m.calls()).includes('off'), 'no hard off');
});

test('an OS that ignores the soft request is forced off after the timeout, where policy allows', async (t) => {
  const m = await machine(t, false);
  const started = Date.now();
  const result = await powerOffGracefully(m.driver, { softTimeoutMs: 800, allowHard: true, pollMs: 100 });
  assert.deepEqual(result, { before: 'on', how: 'hard' });
  assert.ok(Date.now() - started >= 800);
  assert.equal(await m.state(), 'off');
  assert.deepEqual(
    (await m.calls()).filter((c) => c !== 'status'),
    ['soft', 'off'],
  );
});

test('without permission for a hard off, the machine stays on and the error says why', async (t) => {
  const m = await machine(t, false);
  await assert.rejects(
    powerOffGracefully(m.driver, { softTimeoutMs: 300, allowHard: false, pollMs: 100 }),
    /still on 0 s after a soft off, and policy forbids a hard off/,
  );
  assert.equal(await m.state(), 'on');
});

test('a machine already off is left alone', async (t) => {
  const m = await machine(t, true);
  await m.driver.powerOff();
  assert.deepEqual(await powerOffGracefully(m.driver, { softTimeoutMs: 300, allowHard: true }), {
    before: 'off',
    how: 'already-off',
  });
});
