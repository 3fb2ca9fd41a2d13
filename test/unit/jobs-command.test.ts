import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runJob } from '../../activities/jobs/run-job';
import { commandJob, eventually, jobDeps, loopbackTarget, processGone } from '../helpers/jobs-fixtures';

const sh = (script: string, more: Parameters<typeof commandJob>[0] = {}) =>
  commandJob({ command: 'sh', args: ['-c', script], ...more });

test('exit status 0 passes with stdout and stderr interleaved as they came', async () => {
  const script = 'echo out; sleep 0.2; echo err >&2; sleep 0.2; echo out again';
  const result = await runJob(sh(script), loopbackTarget(), jobDeps());
  assert.equal(result.ok, true, result.error);
  assert.equal(result.output, 'out\nerr\nout again\n');
});

test('a non-zero exit fails with its status and output', async () => {
  const result = await runJob(sh('echo "disk not found" >&2; exit 3'), loopbackTarget(), jobDeps());
  assert.equal(result.ok, false);
  assert.equal(result.error, 'sh: exited with status 3');
  assert.equal(result.output, 'disk not found\n');
});

test('the script sees the host context and the target env, not the agent environment', async () => {
  process.env.VAQUERO_TEST_AGENT_SECRET = 'agent-only';
  try {
    const target = loopbackTarget({ EXTRA: 'given' });
    const script =
      'echo "$VAQUERO_HOST $VAQUERO_SITE $VAQUERO_IPV4 $VAQUERO_MAC $EXTRA [$VAQUERO_TEST_AGENT_SECRET]"';
    const result = await runJob(sh(script), target, jobDeps());
    assert.equal(result.output, 'node-1 lab 127.0.0.1 52:54:00:12:34:56 given []\n');
  } finally {
    delete process.env.VAQUERO_TEST_AGENT_SECRET;
  }
});

test('args are passed as given, without a shell', async () => {
  const result = await runJob(
    commandJob({ command: 'printf', args: ['%s|', '$HOME', 'a b', '*'] }),
    loopbackTarget(),
    jobDeps(),
  );
  assert.equal(result.output, '$HOME|a b|*|');
});

test('a timeout kills the script and its children, keeping what they printed', async () => {
  const started = Date.now();
  const result = await runJob(
    sh('echo $$; sleep 30 & echo $!; wait', { timeout: '1s' }),
    loopbackTarget(),
    jobDeps(),
  );
  const elapsed = Date.now() - started;
  assert.equal(result.ok, false);
  assert.equal(result.error, 'timed out after 1s');
  // 1 s of timeout, then the kill; the margin is for a loaded CI machine.
  assert.ok(elapsed < 3000, `took ${elapsed} ms`);
  const pids = result.output.trim().split('\n').map(Number);
  assert.equal(pids.length, 2, result.output);
  for (const pid of pids) assert.ok(await eventually(() => processGone(pid)), `process ${pid} still runs`);
});

test('a background child does not hold a finished job', async () => {
  const started = Date.now();
  const result = await runJob(sh('sleep 30 & echo $!'), loopbackTarget(), jobDeps());
  assert.equal(result.ok, true, result.error);
  assert.ok(Date.now() - started < 5000, 'waited for the background child');
  const pid = Number(result.output.trim());
  assert.ok(await eventually(() => processGone(pid)), `process ${pid} still runs`);
});

test('long output is cut to 4 KiB, keeping its start and its end', async () => {
  const script =
    'echo BEGIN; i=0; while [ $i -lt 500 ]; do echo "line $i of filler text"; i=$((i+1)); done; echo END';
  const result = await runJob(sh(script), loopbackTarget(), jobDeps());
  assert.equal(result.ok, true, result.error);
  assert.ok(Buffer.byteLength(result.output) <= 4096, `${Buffer.byteLength(result.output)} bytes`);
  assert.match(result.output, /^BEGIN\n/);
  assert.match(result.output, /\n\[\.\.\. \d+ bytes truncated \.\.\.\]\n/);
  assert.match(result.output, /line 499 of filler text\nEND\n$/);
});

test('a program that does not exist fails without retrying', async () => {
  const job = commandJob({ command: 'vaquero-no-such-program', retries: 3, retry_delay: '30s' });
  const result = await runJob(job, loopbackTarget(), jobDeps());
  assert.equal(result.attempts, 1);
  assert.equal(result.error, 'vaquero-no-such-program: not found');
});
