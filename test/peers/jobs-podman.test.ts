// Issue 14 item 5: container jobs against a real engine, Debian's podman, in an image built here
// from a busybox root (scripts/install-job-image.sh; no registry). Output, exit status, retries,
// the job's environment and its network are podman's own, read back from the job's result.
import assert from 'node:assert/strict';
import { symlink } from 'node:fs/promises';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { findRuntimes } from '../../activities/jobs/container-job';
import { DEFAULT_PATH } from '../../activities/jobs/command-job';
import { runJob } from '../../activities/jobs/run-job';
import { containerJob, httpServer, jobDeps, loopbackTarget, tempDir } from '../helpers/jobs-fixtures';
import { podmanJobImage } from '../helpers/podman';

/** A PATH whose only runtimes are these (links to them), in this order of directories. */
async function pathWith(t: TestContext, runtimes: string[]): Promise<string> {
  const dirs: string[] = [];
  for (const runtime of runtimes) {
    const dir = await tempDir(t);
    await symlink(runtime, path.join(dir, path.basename(runtime)));
    dirs.push(dir);
  }
  return dirs.join(':');
}

async function podman(t: TestContext): Promise<{ image: string; PATH: string } | undefined> {
  const image = await podmanJobImage(t);
  const runtime = (await findRuntimes(DEFAULT_PATH)).find((r) => path.basename(r) === 'podman');
  if (!image || !runtime) return undefined;
  return { image, PATH: await pathWith(t, [runtime]) };
}

test('a container job runs in the local image with the host in its environment', async (t) => {
  const p = await podman(t);
  if (!p) return;
  const job = containerJob({
    image: p.image,
    args: ['sh', '-c', 'echo "host=$VAQUERO_HOST mac=$VAQUERO_MAC extra=$EXTRA"; cat /etc/passwd'],
    env: { EXTRA: 'from the profile' },
    network: 'none',
  });
  const result = await runJob(job, loopbackTarget({ PATH: p.PATH }), jobDeps());
  assert.equal(result.error, undefined);
  assert.equal(result.ok, true);
  assert.match(result.output, /^host=node-1 mac=52:54:00:12:34:56 extra=from the profile$/m);
  assert.match(result.output, /^root:x:0:0:root:\/:\/bin\/sh$/m, 'the busybox root, not the agent host');
});

test('a failing container job says its exit status and is retried', async (t) => {
  const p = await podman(t);
  if (!p) return;
  const job = containerJob({
    image: p.image,
    args: ['sh', '-c', 'echo checking; echo not ready >&2; exit 3'],
    network: 'none',
    retries: 1,
    retry_delay: '1s',
  });
  const result = await runJob(job, loopbackTarget({ PATH: p.PATH }), jobDeps());
  assert.equal(result.ok, false);
  assert.equal(result.attempts, 2);
  assert.equal(result.error, `container ${p.image}: exited with status 3`);
  assert.match(result.output, /checking/);
  assert.match(result.output, /not ready/);
});

test('network host: the job reaches what the agent reaches on its own network', async (t) => {
  const p = await podman(t);
  if (!p) return;
  const base = await httpServer(t, (_req, res) => res.end('{"booted":true,"marker":"v2"}'));
  const job = containerJob({
    image: p.image,
    args: ['wget', '-q', '-O', '-', `${base}/status.json`],
    network: 'host',
  });
  const result = await runJob(job, loopbackTarget({ PATH: p.PATH }), jobDeps());
  assert.equal(result.error, undefined);
  assert.match(result.output, /"marker":"v2"/);
  // Without it, the container's loopback is its own: nothing listens there.
  const none = await runJob({ ...job, network: 'none' }, loopbackTarget({ PATH: p.PATH }), jobDeps());
  assert.equal(none.ok, false);
});

test('a docker CLI whose daemon is down is passed over for podman', async (t) => {
  const p = await podman(t);
  if (!p) return;
  const runtimes = await findRuntimes(DEFAULT_PATH);
  const docker = runtimes.find((r) => path.basename(r) === 'docker');
  const podmanCli = runtimes.find((r) => path.basename(r) === 'podman');
  if (!docker || !podmanCli) return t.skip('no docker CLI here');
  const job = containerJob({ image: p.image, args: ['echo', 'ran on podman'], network: 'none' });
  const result = await runJob(
    job,
    loopbackTarget({ PATH: await pathWith(t, [docker, podmanCli]) }),
    jobDeps(),
  );
  if (!result.output.startsWith('docker: ')) return t.skip('docker has a working engine here');
  assert.equal(result.ok, true, result.error);
  assert.match(result.output, /^docker: Cannot connect to the Docker daemon.*; trying podman$/m);
  assert.match(result.output, /^ran on podman$/m);
});
