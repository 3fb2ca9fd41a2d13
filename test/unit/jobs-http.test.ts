import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { runJob } from '../../activities/jobs/run-job';
import { freePort, httpJob, httpServer, jobDeps, loopbackTarget, tempDir } from '../helpers/jobs-fixtures';

const target = loopbackTarget();

test('a 200 answer passes and the output starts with the status line', async (t) => {
  const url = await httpServer(t, (_req, res) => res.end('all good'));
  const result = await runJob(httpJob({ url: `${url}/healthz` }), target, jobDeps());
  assert.equal(result.ok, true, result.error);
  assert.equal(result.attempts, 1);
  assert.equal(result.output, 'HTTP 200 OK\nall good');
  assert.equal(result.error, undefined);
});

test('the status must be one of expect_status', async (t) => {
  const url = await httpServer(t, (_req, res) => {
    res.statusCode = 503;
    res.end('draining');
  });
  const failed = await runJob(httpJob({ url }), target, jobDeps());
  assert.equal(failed.ok, false);
  assert.equal(failed.error, 'expected status 200, got 503');
  assert.equal(failed.output, 'HTTP 503 Service Unavailable\ndraining');
  const expected = await runJob(httpJob({ url, expect_status: [200, 503] }), target, jobDeps());
  assert.equal(expected.ok, true, expected.error);
});

test('expect_json compares a dotted path with the value and its type', async (t) => {
  const body = { status: 'ok', ready: 'true', cluster: { nodes: [{ healthy: true }, { healthy: false }] } };
  const url = await httpServer(t, (_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(body));
  });
  const check = (path: string, equals: unknown) =>
    runJob(httpJob({ url, expect_json: { path, equals } }), target, jobDeps());
  assert.equal((await check('status', 'ok')).ok, true);
  assert.equal((await check('cluster.nodes.0.healthy', true)).ok, true);
  assert.equal((await check('ready', 'true')).ok, true);
  const typeMismatch = await check('ready', true);
  assert.equal(typeMismatch.ok, false);
  assert.equal(typeMismatch.error, 'response JSON ready is "true", expected true');
  assert.equal(
    (await check('cluster.nodes.1.healthy', true)).error,
    'response JSON cluster.nodes.1.healthy is false, expected true',
  );
  assert.equal(
    (await check('cluster.nodes.2.healthy', true)).error,
    'response JSON has no cluster.nodes.2.healthy',
  );
});

test('expect_json on a body that is not JSON fails clearly', async (t) => {
  const url = await httpServer(t, (_req, res) => res.end('<html>'));
  const result = await runJob(
    httpJob({ url, expect_json: { path: 'status', equals: 'ok' } }),
    target,
    jobDeps(),
  );
  assert.equal(result.error, 'response is not JSON (expected status in it)');
});

test('the bearer token from a secret file reaches the server; method, headers and body are sent', async (t) => {
  const dir = await tempDir(t);
  await writeFile(path.join(dir, 'token'), 'tok-123\n');
  const seen: { method?: string; auth?: string; custom?: string; body: string }[] = [];
  const url = await httpServer(t, (req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push({
        method: req.method,
        auth: req.headers.authorization,
        custom: req.headers['x-site'] as string | undefined,
        body,
      });
      res.statusCode = 204;
      res.end();
    });
  });
  const job = httpJob({
    url,
    method: 'POST',
    headers: { 'X-Site': 'lab', Authorization: 'Basic overridden' },
    body: '{"drain":true}',
    bearer_token: { file: path.join(dir, 'token') },
    expect_status: [204],
  });
  const result = await runJob(job, target, jobDeps());
  assert.equal(result.ok, true, result.error);
  assert.deepEqual(seen, [{ method: 'POST', auth: 'Bearer tok-123', custom: 'lab', body: '{"drain":true}' }]);
});

test('a server that never answers times out within the configured time', async (t) => {
  let requests = 0;
  const url = await httpServer(t, () => {
    requests++;
  });
  const result = await runJob(httpJob({ url, timeout: '1s' }), target, jobDeps());
  assert.equal(result.ok, false);
  assert.equal(result.error, 'timed out after 1s');
  assert.equal(requests, 1);
  assert.ok(result.durationMs >= 1000 && result.durationMs < 3000, `took ${result.durationMs} ms`);
});

test('retries are counted at the server, with a heartbeat before each attempt', async (t) => {
  let requests = 0;
  const url = await httpServer(t, (_req, res) => {
    requests++;
    res.statusCode = requests < 3 ? 502 : 200;
    res.end();
  });
  const beats: unknown[] = [];
  const deps = jobDeps({}, { heartbeat: (details) => beats.push(details) });
  const result = await runJob(httpJob({ name: 'api-up', url, retries: 5, retry_delay: '0s' }), target, deps);
  assert.equal(result.ok, true, result.error);
  assert.equal(requests, 3);
  assert.equal(result.attempts, 3);
  assert.deepEqual(
    beats,
    [1, 2, 3].map((attempt) => ({ job: 'api-up', attempt })),
  );
});

test('every attempt failing reports the last one', async (t) => {
  let requests = 0;
  const url = await httpServer(t, (_req, res) => {
    requests++;
    res.statusCode = 500;
    res.end(`failure ${requests}`);
  });
  const result = await runJob(httpJob({ url, retries: 2, retry_delay: '0s' }), target, jobDeps());
  assert.equal(requests, 3);
  assert.equal(result.attempts, 3);
  assert.equal(result.output, 'HTTP 500 Internal Server Error\nfailure 3');
});

test('a closed port is a connection refused', async () => {
  const url = `http://127.0.0.1:${await freePort()}/`;
  const result = await runJob(httpJob({ url }), target, jobDeps());
  assert.equal(result.error, `GET ${url}: connection refused`);
});

test('a long body is cut to 4 KiB in the output, its head kept', async (t) => {
  const url = await httpServer(t, (_req, res) => res.end('x'.repeat(100_000)));
  const result = await runJob(httpJob({ url }), target, jobDeps());
  assert.equal(result.ok, true);
  assert.ok(Buffer.byteLength(result.output) <= 4096, `${Buffer.byteLength(result.output)} bytes`);
  assert.match(result.output, /^HTTP 200 OK\nxxx/);
  assert.match(result.output, /\[\.\.\. \d+ more bytes truncated \.\.\.\]$/);
});

test('an invalid URL fails without retrying', async () => {
  const result = await runJob(httpJob({ url: 'ftp://127.0.0.1/x', retries: 3 }), target, jobDeps());
  assert.equal(result.attempts, 1);
  assert.equal(result.error, 'URL ftp://127.0.0.1/x is not http or https');
});
