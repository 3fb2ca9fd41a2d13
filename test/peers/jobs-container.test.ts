import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { symlink } from 'node:fs/promises';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { DEFAULT_PATH } from '../../activities/jobs/command-job';
import { findRuntimes, NO_RUNTIME_ERROR } from '../../activities/jobs/container-job';
import { runJob } from '../../activities/jobs/run-job';
import { containerJob, jobDeps, loopbackTarget, tempDir } from '../helpers/jobs-fixtures';

test('without docker or podman on PATH the job fails at once, saying so', async (t) => {
  const emptyBin = await tempDir(t);
  const job = containerJob({ image: 'busybox', args: ['true'], retries: 3, retry_delay: '30s' });
  const result = await runJob(job, loopbackTarget({ PATH: emptyBin }), jobDeps());
  assert.equal(result.ok, false);
  assert.equal(result.attempts, 1);
  assert.equal(result.error, NO_RUNTIME_ERROR);
  assert.equal(result.error, 'no container runtime (docker or podman) on this agent');
});

const engineUp = (runtime: string) =>
  promisify(execFile)(runtime, ['info'], { timeout: 20_000 }).then(
    () => true,
    () => false,
  );

/** The first runtime on the default PATH whose engine does not answer (a docker CLI without its daemon). */
async function downRuntime(): Promise<string | undefined> {
  for (const runtime of await findRuntimes(DEFAULT_PATH)) if (!(await engineUp(runtime))) return runtime;
  return undefined;
}

/** A PATH of one directory holding only `runtime` (a link to it). */
async function pathOf(t: TestContext, runtime: string): Promise<string> {
  const dir = await tempDir(t);
  await symlink(runtime, path.join(dir, path.basename(runtime)));
  return dir;
}

test('a runtime CLI whose engine is not running fails at once, saying so', async (t) => {
  const runtime = await downRuntime();
  // With a working engine the job would pull an image, which this machine cannot reach.
  if (!runtime) return t.skip('no docker or podman without a working engine here');
  const job = containerJob({
    image: 'busybox',
    args: ['true'],
    retries: 3,
    retry_delay: '30s',
    timeout: '4s',
  });
  // That runtime alone: another one's working engine would be tried next.
  const result = await runJob(job, loopbackTarget({ PATH: await pathOf(t, runtime) }), jobDeps());
  assert.equal(result.ok, false);
  assert.equal(result.attempts, 1);
  assert.match(
    result.error ?? '',
    /^(docker|podman) is installed but its engine does not answer: Cannot connect to /,
  );
});
