// An agent killed with SIGKILL leaves its radvd running, holding the pid file, and the next agent's
// radvd would exit at start ("unable to lock pid file"; found by the lab's agent-kill test). The next
// agent stops that orphan first, and nothing else: only a radvd with this state directory's config.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { stopOrphanRadvd } from '../../agent/ra';

/** A stand-in named radvd (a shell loop): its command line is `sh <dir>/radvd --config <conf> ...`. */
async function fakeRadvd(t: TestContext, bin: string, conf: string): Promise<ChildProcess> {
  const child = spawn(bin, ['--nodaemon', '--config', conf], { stdio: 'ignore' });
  t.after(() => child.kill('SIGKILL'));
  await new Promise((resolve) => child.once('spawn', resolve));
  return child;
}

const exited = (child: ChildProcess) =>
  new Promise<NodeJS.Signals | number | null>((resolve) =>
    child.exitCode !== null || child.signalCode !== null
      ? resolve(child.signalCode ?? child.exitCode)
      : child.once('exit', (code, signal) => resolve(signal ?? code)),
  );

test('a radvd left by a killed agent is stopped; other processes are left alone', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'vq-radvd-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const bin = path.join(dir, 'radvd');
  await writeFile(bin, '#!/bin/sh\nwhile :; do sleep 1; done\n');
  await chmod(bin, 0o755);
  const pidFile = path.join(dir, 'radvd.pid');

  assert.equal(await stopOrphanRadvd(dir), undefined, 'no pid file: nothing to do');
  await writeFile(pidFile, 'garbage\n');
  assert.equal(await stopOrphanRadvd(dir), undefined, 'an unreadable pid file is ignored');

  // A pid that is not radvd (this test process) or radvd of another state directory is not touched.
  await writeFile(pidFile, `${process.pid}\n`);
  assert.equal(await stopOrphanRadvd(dir), undefined);
  const other = await fakeRadvd(t, bin, path.join(tmpdir(), 'elsewhere', 'radvd.conf'));
  await writeFile(pidFile, `${other.pid}\n`);
  assert.equal(await stopOrphanRadvd(dir), undefined);
  assert.equal(other.exitCode, null, "another agent's radvd still runs");

  const orphan = await fakeRadvd(t, bin, path.join(dir, 'radvd.conf'));
  await writeFile(pidFile, `${orphan.pid}\n`);
  const stopped = exited(orphan);
  assert.equal(await stopOrphanRadvd(dir), orphan.pid);
  assert.equal(await stopped, 'SIGTERM', 'stopped with SIGTERM');
  assert.equal(other.exitCode, null);
});
