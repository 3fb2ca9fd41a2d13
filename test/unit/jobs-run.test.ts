import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runJob, runJobs } from '../../activities/jobs/run-job';
import type { Job } from '../../schemas/jobs';
import { commandJob, eventually, jobDeps, loopbackTarget, processGone } from '../helpers/jobs-fixtures';

const sh = (name: string, script: string, more: Parameters<typeof commandJob>[0] = {}) =>
  commandJob({ name, command: 'sh', args: ['-c', script], ...more });

test('runJobs runs in order and stops at the first failing job', async () => {
  const jobs = [sh('first', 'echo 1'), sh('second', 'exit 1'), sh('third', 'echo 3')];
  const results = await runJobs(jobs, loopbackTarget(), jobDeps());
  assert.deepEqual(
    results.map((r) => [r.name, r.type, r.ok]),
    [
      ['first', 'command', true],
      ['second', 'command', false],
    ],
  );
});

test('runJobs of passing jobs returns every result', async () => {
  const results = await runJobs([sh('a', 'true'), sh('b', 'true')], loopbackTarget(), jobDeps());
  assert.deepEqual(
    results.map((r) => r.ok),
    [true, true],
  );
});

test('cancelling stops the running attempt promptly and kills its process', async () => {
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 200);
  const started = Date.now();
  const job = sh('slow', 'echo $$; exec sleep 30', { retries: 3 });
  const result = await runJob(job, loopbackTarget(), jobDeps({}, { signal: controller.signal }));
  assert.ok(Date.now() - started < 2500, `took ${Date.now() - started} ms`);
  assert.equal(result.ok, false);
  assert.equal(result.error, 'cancelled');
  assert.equal(result.attempts, 1);
  const pid = Number(result.output.trim());
  assert.ok(await eventually(() => processGone(pid)), `process ${pid} still runs`);
});

test('cancelling during the retry delay stops without another attempt', async () => {
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 200);
  const started = Date.now();
  const job = sh('flaky', 'exit 1', { retries: 5, retry_delay: '30s' });
  const result = await runJob(job, loopbackTarget(), jobDeps({}, { signal: controller.signal }));
  assert.ok(Date.now() - started < 2500, `took ${Date.now() - started} ms`);
  assert.equal(result.error, 'cancelled');
  assert.equal(result.attempts, 1);
});

test('an already cancelled job does not start', async () => {
  const result = await runJob(
    sh('never', 'true'),
    loopbackTarget(),
    jobDeps({}, { signal: AbortSignal.abort() }),
  );
  assert.deepEqual([result.ok, result.attempts, result.error], [false, 0, 'cancelled']);
});

test('retry_delay separates attempts, and the duration comes from the clock given', async () => {
  const slept: number[] = [];
  let clock = 1_000;
  const deps = jobDeps(
    {},
    {
      now: () => (clock += 250),
      sleep: (ms) => {
        slept.push(ms);
        return Promise.resolve();
      },
    },
  );
  const result = await runJob(
    sh('flaky', 'exit 1', { retries: 2, retry_delay: '1m30s' }),
    loopbackTarget(),
    deps,
  );
  assert.equal(result.attempts, 3);
  assert.deepEqual(slept, [90_000, 90_000]);
  assert.equal(result.durationMs, 250);
});

test('a long attempt keeps heartbeating', async () => {
  const beats: unknown[] = [];
  const deps = jobDeps({}, { heartbeat: (d) => beats.push(d), heartbeatIntervalMs: 50 });
  const result = await runJob(sh('slow', 'sleep 0.4'), loopbackTarget(), deps);
  assert.equal(result.ok, true, result.error);
  assert.ok(beats.length >= 4, `${beats.length} heartbeats`);
  assert.deepEqual(beats[0], { job: 'slow', attempt: 1 });
});

test('a job of an unknown type is a programming error and throws', async () => {
  const bogus = { ...sh('bogus', 'true'), type: 'telnet' } as unknown as Job;
  await assert.rejects(runJob(bogus, loopbackTarget(), jobDeps()), /unknown job type telnet/);
});
