import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { runJob } from '../../activities/jobs/run-job';
import { createSecretResolver, SECRET_FILE_MAX_BYTES } from '../../activities/jobs/secrets';
import { httpJob, jobDeps, loopbackTarget, tempDir } from '../helpers/jobs-fixtures';

const VALUE = 's3cr3t-value-never-printed';

test('an env reference resolves from the given environment, not the process', async () => {
  process.env.VAQUERO_TEST_ONLY_IN_PROCESS = VALUE;
  const resolve = createSecretResolver({ API_TOKEN: VALUE });
  assert.equal(await resolve({ env: 'API_TOKEN' }), VALUE);
  await assert.rejects(
    resolve({ env: 'VAQUERO_TEST_ONLY_IN_PROCESS' }),
    /VAQUERO_TEST_ONLY_IN_PROCESS is not set/,
  );
  delete process.env.VAQUERO_TEST_ONLY_IN_PROCESS;
});

test('a missing or empty variable is named in the error, and no value is', async () => {
  const resolve = createSecretResolver({ OTHER: VALUE, BLANK: '  ' });
  await assert.rejects(resolve({ env: 'API_TOKEN' }), (err: Error) => {
    assert.equal(err.message, 'secret environment variable API_TOKEN is not set');
    return true;
  });
  await assert.rejects(resolve({ env: 'BLANK' }), /secret environment variable BLANK is empty/);
});

test('a file reference is read from disk and trimmed', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'token');
  await writeFile(file, `  ${VALUE}\n\n`);
  assert.equal(await createSecretResolver({})({ file }), VALUE);
});

test('a missing, empty or non-regular file is named in the error', async (t) => {
  const dir = await tempDir(t);
  const resolve = createSecretResolver({});
  const missing = path.join(dir, 'nope');
  await assert.rejects(resolve({ file: missing }), {
    message: `cannot open secret file ${missing}: no such file`,
  });
  await writeFile(path.join(dir, 'empty'), '\n');
  await assert.rejects(resolve({ file: path.join(dir, 'empty') }), /secret file .*empty is empty/);
  await mkdir(path.join(dir, 'sub'));
  await assert.rejects(resolve({ file: path.join(dir, 'sub') }), /sub is not a regular file/);
});

test('a file larger than 64 KiB is refused without printing it', async (t) => {
  const dir = await tempDir(t);
  const resolve = createSecretResolver({});
  const exact = path.join(dir, 'exact');
  await writeFile(exact, 'k'.repeat(SECRET_FILE_MAX_BYTES));
  assert.equal((await resolve({ file: exact })).length, SECRET_FILE_MAX_BYTES);
  const big = path.join(dir, 'big');
  await writeFile(big, VALUE.repeat(Math.ceil((SECRET_FILE_MAX_BYTES + 1) / VALUE.length)));
  await assert.rejects(resolve({ file: big }), (err: Error) => {
    assert.match(err.message, /secret file .*big is \d+ bytes, larger than the 64 KiB a secret may be/);
    assert.doesNotMatch(err.message, new RegExp(VALUE));
    return true;
  });
});

test('a job whose secret cannot be resolved fails at once, naming the field and variable', async () => {
  const job = httpJob({ bearer_token: { env: 'API_TOKEN' }, retries: 3, retry_delay: '30s' });
  const result = await runJob(job, loopbackTarget(), jobDeps({ OTHER: VALUE }));
  assert.equal(result.ok, false);
  assert.equal(result.attempts, 1);
  assert.equal(result.error, 'bearer_token: secret environment variable API_TOKEN is not set');
});

test('a failing custom resolver is retried as a transient fault', async () => {
  let calls = 0;
  const deps = {
    resolveSecret: () => {
      calls++;
      return Promise.reject(new Error('vault unreachable'));
    },
  };
  const job = httpJob({ bearer_token: { env: 'API_TOKEN' }, retries: 2, retry_delay: '0s' });
  const result = await runJob(job, loopbackTarget(), deps);
  assert.equal(calls, 3);
  assert.equal(result.error, 'bearer_token: vault unreachable');
});
