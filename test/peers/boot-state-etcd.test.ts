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
const docs: EtcdBootDocs[] = [];

before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  for (const d of docs) await d.close();
  for (const c of clients) c.close();
  await etcd.cleanup();
});

function server(): BootStateStore {
  const client = new Etcd3({ hosts: etcd.endpoint });
  clients.push(client);
  const shared = new EtcdBootDocs(client, '/boot-test/');
  docs.push(shared);
  return new BootStateStore(shared);
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

/** Range requests etcd has served so far (reads, and the reads inside transactions). */
async function etcdReads(): Promise<number> {
  const metrics = await (await fetch(`${etcd.endpoint}/metrics`)).text();
  const line = /^etcd_mvcc_range_total (\d+)/m.exec(metrics);
  assert.ok(line, 'etcd_mvcc_range_total in /metrics');
  return Number(line[1]);
}

test('waiting long polls read nothing while they wait; one arm wakes them all within a second', async (t) => {
  const [a, b] = [server(), server()];
  const { revision } = await b.arms('fra3');
  const waiters = Array.from({ length: 40 }, () => b.watch('fra3', revision, 5_000));
  await new Promise((r) => setTimeout(r, 300));
  const before = await etcdReads();
  await new Promise((r) => setTimeout(r, 1_000));
  const idle = (await etcdReads()) - before;
  // Polling every 200 ms would be 5 reads a waiter a second, 200 here.
  assert.ok(idle <= 4, `${idle} etcd reads in 1 s while 40 long polls waited`);
  const started = Date.now();
  await a.arm('fra3', { ...entry(40), site: 'fra3' });
  const seen = await Promise.all(waiters);
  const took = Date.now() - started;
  t.diagnostic(`${idle} etcd reads in 1 s with 40 long polls waiting; all woken ${took} ms after the arm`);
  assert.ok(took < 1_000, `${took} ms`);
  for (const s of seen) assert.equal(s.revision, revision + 1);
});
