// Leader election on a real etcd: one leader among replicas, hand-over on resignation, a partitioned
// leader stepping down before anyone else can be elected (etcd reached through a TCP proxy that
// cuts), and etcd itself going away.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Etcd3 } from 'etcd3';
import { createEtcdLeadership } from '../../server/ha/etcd-leader';
import type { Leadership } from '../../server/ha/leader';
import { faultProxy, startEtcd, type TestEtcd } from '../helpers/etcd';

const TTL = 2;
let etcd: TestEtcd;
const closers: (() => Promise<void> | void)[] = [];

before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  for (const close of closers.reverse()) await close();
  await etcd.cleanup();
});

interface Replica extends Leadership {
  id: string;
  /** [time, leader] of every change, in order. */
  changes: [number, boolean][];
}

function replica(endpoint: string, name: string, id: string): Replica {
  const client = new Etcd3({ hosts: endpoint });
  const leadership = createEtcdLeadership({ client, name, ttl: TTL, id });
  const changes: [number, boolean][] = [];
  leadership.onChange((leader) => changes.push([Date.now(), leader]));
  closers.push(
    () => client.close(),
    () => leadership.close(),
  );
  return Object.assign(leadership, { changes });
}

async function waitFor(what: string, condition: () => boolean, ms: number): Promise<number> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > ms) assert.fail(`${what}: not within ${ms} ms`);
    await sleep(10);
  }
  return Date.now() - started;
}

/** When `r` last became `leader` (its change log's time), or fails. */
function lastChange(r: Replica, leader: boolean): number {
  const found = r.changes.filter(([, l]) => l === leader).at(-1);
  assert.ok(found, `${r.id} never became ${leader ? 'leader' : 'follower'}`);
  return found[0];
}

describe('etcd leadership', () => {
  test('exactly one of two replicas leads; when it resigns the other takes over at once', async () => {
    const a = replica(etcd.endpoint, 'resign', 'a');
    await waitFor('a leads', () => a.isLeader(), 5_000);
    const b = replica(etcd.endpoint, 'resign', 'b');
    await sleep(1_500);
    assert.equal(b.isLeader(), false, 'b does not lead while a does');
    assert.equal(a.isLeader(), true);
    await a.close();
    assert.equal(a.isLeader(), false);
    const ms = await waitFor('b leads after a resigned', () => b.isLeader(), 2_000);
    console.log(`hand-over on resignation: ${ms} ms`);
  });

  test('a partitioned leader steps down before the other is elected, and only campaigns after healing', async () => {
    const proxy = await faultProxy(etcd.endpoint);
    closers.push(() => proxy.close());
    const a = replica(proxy.endpoint, 'partition', 'a');
    await waitFor('a leads', () => a.isLeader(), 5_000);
    const b = replica(etcd.endpoint, 'partition', 'b');
    await sleep(500);
    const cut = Date.now();
    proxy.cut();
    await waitFor('a steps down', () => !a.isLeader(), TTL * 1000);
    await waitFor('b leads', () => b.isLeader(), TTL * 1000 + 3_000);
    const down = lastChange(a, false) - cut;
    const up = lastChange(b, true) - cut;
    console.log(`partitioned leader stepped down after ${down} ms; the other led after ${up} ms`);
    assert.ok(down < (TTL * 1000) / 2 + 300, `stepped down within ttl/2 (${down} ms)`);
    assert.ok(down < up, 'no moment with two leaders');
    proxy.restore();
    await sleep(TTL * 2000 + 1_000);
    assert.equal(a.isLeader(), false, 'the healed replica does not take over');
    assert.equal(b.isLeader(), true);
  });

  test('etcd down: the leader stops leading promptly; etcd back: one replica leads again', async () => {
    const a = replica(etcd.endpoint, 'outage', 'a');
    const b = replica(etcd.endpoint, 'outage', 'b');
    await waitFor('one leads', () => a.isLeader() || b.isLeader(), 5_000);
    const leader = a.isLeader() ? a : b;
    const killed = Date.now();
    await etcd.kill();
    await waitFor('the leader steps down', () => !leader.isLeader(), TTL * 1000);
    console.log(`leader stepped down ${lastChange(leader, false) - killed} ms after etcd was killed`);
    assert.equal(a.isLeader() || b.isLeader(), false);
    await sleep(TTL * 2000 + 500);
    assert.equal(a.isLeader() || b.isLeader(), false, 'nobody leads while etcd is down');
    const restarted = Date.now();
    await etcd.restart();
    const ms = await waitFor('a replica leads again', () => a.isLeader() || b.isLeader(), 15_000);
    console.log(`a replica led again ${ms} ms after etcd restarted (${Date.now() - restarted} ms)`);
    await sleep(1_000);
    assert.equal(a.isLeader() && b.isLeader(), false, 'never both');
  });
});
