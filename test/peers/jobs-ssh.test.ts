import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { runJob } from '../../activities/jobs/run-job';
import { freePort, jobDeps, loopbackTarget, sshJob } from '../helpers/jobs-fixtures';
import { startSshdOrSkip } from '../helpers/jobs-sshd';

const keyFilesLeft = async () => (await readdir(tmpdir())).filter((name) => name.startsWith('vaquero-ssh-'));

test('an SSH job runs its command as root on a real sshd', async (t) => {
  const sshd = await startSshdOrSkip(t);
  if (!sshd) return;
  const before = await keyFilesLeft();
  const knownHostsFile = path.join(sshd.dir, 'known_hosts');
  const job = sshJob({ command: 'echo ok $HOSTNAME; id -un', port: sshd.port, timeout: '4s' });
  const result = await runJob(
    job,
    loopbackTarget(),
    jobDeps({ SSH_KEY: sshd.authorizedKey }, { knownHostsFile }),
  );
  assert.equal(result.ok, true, `${result.error}\n${result.output}`);
  assert.equal(result.output, `ok ${hostname()}\nroot\n`);
  // Trust on first use recorded the host key; the key file written for the job is gone.
  const hostKey = (await readFile(path.join(sshd.dir, 'host_key.pub'), 'utf8'))
    .split(' ')
    .slice(0, 2)
    .join(' ');
  assert.ok((await readFile(knownHostsFile, 'utf8')).includes(hostKey), 'host key not in known_hosts');
  assert.deepEqual(await keyFilesLeft(), before);
});

test("the remote command's exit status fails the job", async (t) => {
  const sshd = await startSshdOrSkip(t);
  if (!sshd) return;
  const job = sshJob({ command: 'echo nope >&2; exit 4', port: sshd.port, timeout: '4s' });
  const result = await runJob(job, loopbackTarget(), jobDeps({ SSH_KEY: sshd.authorizedKey }));
  assert.equal(result.ok, false);
  assert.equal(result.error, `ssh root@127.0.0.1:${sshd.port}: echo nope >&2; exit 4: exited with status 4`);
  assert.equal(result.output, 'nope\n');
});

test('a key that is not authorized fails with ssh saying why', async (t) => {
  const sshd = await startSshdOrSkip(t);
  if (!sshd) return;
  const job = sshJob({ command: 'echo ok', port: sshd.port, timeout: '4s' });
  const result = await runJob(job, loopbackTarget(), jobDeps({ SSH_KEY: sshd.strangerKey }));
  assert.equal(result.ok, false);
  assert.equal(
    result.error,
    `ssh root@127.0.0.1:${sshd.port}: connection or authentication failed (ssh status 255)`,
  );
  assert.match(result.output, /Permission denied \(publickey\)/);
});

test('no sshd on the port fails as a connection failure', async () => {
  const port = await freePort();
  const result = await runJob(
    sshJob({ port, timeout: '4s' }),
    loopbackTarget(),
    jobDeps({ SSH_KEY: 'not used' }),
  );
  assert.equal(result.ok, false);
  assert.match(result.output, /Connection refused/);
});
