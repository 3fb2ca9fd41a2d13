import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { DEFAULT_PATH } from '../../activities/jobs/command-job';
import { findRuntime, NO_RUNTIME_ERROR } from '../../activities/jobs/container-job';
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

test('a runtime CLI whose engine is not running fails at once, saying so', async (t) => {
  const runtime = await findRuntime(DEFAULT_PATH);
  if (!runtime) return t.skip('neither docker nor podman is installed here');
  const engineUp = await promisify(execFile)(runtime, ['info'], { timeout: 4000 }).then(
    () => true,
    () => false,
  );
  // With a working engine the job would pull an image, which this machine cannot reach.
  if (engineUp) return t.skip(`${runtime} has a working engine`);
  const job = containerJob({
    image: 'busybox',
    args: ['true'],
    retries: 3,
    retry_delay: '30s',
    timeout: '4s',
  });
  const result = await runJob(job, loopbackTarget(), jobDeps());
  assert.equal(result.ok, false);
  assert.equal(result.attempts, 1);
  assert.match(
    result.error ?? '',
    /^(docker|podman) is installed but its engine does not answer: Cannot connect to /,
  );
});
