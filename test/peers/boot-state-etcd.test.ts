// The site boot state shared by two HA servers through a real etcd: each server is its own
// BootStateStore on its own etcd client, as two `vaquero server` processes are.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Etcd3 } from 'etcd3';
import { BootStateStore } from '../../activities/store/boot-state-store';
import { EtcdBootDocs } from '../../activities/store/etcd-boot-docs';
import type { ArmEntry } from '../../schemas/agent';
import { startEtcd, type TestEtcd } from '../helpers/etcd';

let etcd: TestEtcd;
const clients: Etcd3[] = [];

before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  for (const c of clients) c.close();
  await etcd.cleanup();
});

function server(): BootStateStore {
  const client = new Etcd3({ hosts: etcd.endpoint });
  clients.push(client);
  return new BootStateStore(new EtcdBootDocs(client, '/boot-test/'));
}

const entry = (i: number): ArmEntry => ({
  mac: `52:54:00:00:00:${i.toString(16).padStart(2, '0')}`,
  site: 'fra1',
  host: `h${i}`,
  commit: 'abc1234',
  stage: 1,
  workflowId: `host/fra1/h${i}/abc1234`,
  armedAt: new Date().toISOString(),
  token: 'x'.repeat(32),
});

test('an arm through one server wakes a watch on the other within a second', async () => {
  const [a, b] = [server(), server()];
  const { revision } = await b.arms('fra1');
  const started = Date.now();
  const watching = b.watch('fra1', revision, 5_000);
  await new Promise((r) => setTimeout(r, 100));
  await a.arm('fra1', entry(1));
  const seen = await watching;
  assert.equal(seen.revision, revision + 1);
  assert.deepEqual(
    seen.arms.map((e) => e.host),
    ['h1'],
  );
  assert.ok(Date.now() - started < 1000, `${Date.now() - started} ms`);
});

test('concurrent writes through both servers all land (compare-and-set, no lost update)', async () => {
  const [a, b] = [server(), server()];
  await Promise.all(
    Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).arm('fra2', { ...entry(i + 10), site: 'fra2' })),
  );
  const { arms, revision } = await a.arms('fra2');
  assert.equal(arms.length, 20);
  assert.equal(revision, 20);
  // A claim begun on one server, seen and settled through the other.
  const begun = new Date().toISOString();
  await a.begin('fra2', { key: 'k1', mac: entry(10).mac, begun });
  assert.equal(
    await b.seen('fra2', [{ mac: entry(10).mac, at: new Date(Date.parse(begun) + 1).toISOString() }]),
    1,
  );
  assert.equal((await a.claim('fra2', 'k1'))?.seen !== undefined, true);
  assert.equal(await b.done('fra2', 'k1', new Date().toISOString()), true);
  assert.equal(typeof (await a.claim('fra2', 'k1'))?.done, 'string');
  // Claims do not move the arms' revision: watchers are not woken by them.
  assert.equal((await a.arms('fra2')).revision, 20);
});
