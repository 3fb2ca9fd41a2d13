// The DHCP server's overload signal (agent/dhcp/backlog.ts): full libuv batches for SHED_AFTER_MS
// mean a standing queue; one iteration that empties the socket ends it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Backlog, LIBUV_BATCH, SHED_AFTER_MS } from '../../agent/dhcp/backlog';

const iteration = async (backlog: Backlog, reads: number) => {
  for (let i = 0; i < reads; i++) backlog.read();
  await new Promise((resolve) => setImmediate(resolve));
};

test('a socket read full for SHED_AFTER_MS sheds until an iteration empties it', async () => {
  let now = 1000;
  const backlog = new Backlog(() => now);
  await iteration(backlog, LIBUV_BATCH - 1);
  assert.equal(backlog.shedding(), false, 'a partial batch: the socket was emptied');
  await iteration(backlog, LIBUV_BATCH);
  now += SHED_AFTER_MS - 1;
  await iteration(backlog, LIBUV_BATCH);
  assert.equal(backlog.shedding(), false, 'a queue younger than the threshold');
  now += 1;
  await iteration(backlog, LIBUV_BATCH);
  assert.equal(backlog.shedding(), true, 'a standing queue');
  await iteration(backlog, 3);
  assert.equal(backlog.shedding(), false, 'the queue drained');
  now += 10 * SHED_AFTER_MS;
  await iteration(backlog, LIBUV_BATCH);
  assert.equal(backlog.shedding(), false, 'a new queue starts its own clock');
});
