import assert from 'node:assert/strict';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import { runJob } from '../../activities/jobs/run-job';
import { freePort, jobDeps, loopbackTarget, tcpJob } from '../helpers/jobs-fixtures';

async function listening(t: TestContext): Promise<{ port: number; connections: () => number }> {
  let connections = 0;
  const server = net.createServer((socket) => {
    connections++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { port: (server.address() as net.AddressInfo).port, connections: () => connections };
}

test('a listening port on the target passes', async (t) => {
  const { port, connections } = await listening(t);
  const result = await runJob(tcpJob({ port }), loopbackTarget(), jobDeps());
  assert.equal(result.ok, true, result.error);
  assert.equal(result.output, `connected to 127.0.0.1:${port}`);
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(connections(), 1);
});

test('the job host overrides the target address', async (t) => {
  const { port } = await listening(t);
  const target = { ...loopbackTarget(), ipv4: '192.0.2.1' };
  const result = await runJob(tcpJob({ port, host: '127.0.0.1' }), target, jobDeps());
  assert.equal(result.ok, true, result.error);
});

test('a closed port fails with connection refused, after its retries', async () => {
  const port = await freePort();
  const result = await runJob(tcpJob({ port, retries: 1, retry_delay: '0s' }), loopbackTarget(), jobDeps());
  assert.equal(result.ok, false);
  assert.equal(result.attempts, 2);
  assert.equal(result.error, `cannot connect to 127.0.0.1:${port}: ECONNREFUSED`);
});
