// One set of behavioural tests for every ModelStore (the embedded file store and the HA etcd store),
// then what only etcd has to prove: revisions over etcd's request limit, and surviving a crash.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Etcd3 } from 'etcd3';
import { CHUNK_BYTES, EtcdModelStore } from '../../activities/store/etcd-store';
import { FileModelStore } from '../../activities/store/file-store';
import { APPLIED_HISTORY_LIMIT } from '../../schemas/applied';
import type { ModelStore } from '../../activities/store/model-store';
import { validateSot } from '../../sot/validate';
import type { Model } from '../../schemas/model';
import { startEtcd, type TestEtcd } from '../helpers/etcd';
import { sotMin } from '../helpers/sot';

let model: Model;
let etcd: TestEtcd;
const clients: Etcd3[] = [];
const dirs: string[] = [];

before(async () => {
  const result = await validateSot(sotMin);
  assert.ok(result.model, 'sot-min validates');
  model = result.model;
  etcd = await startEtcd();
});

after(async () => {
  await etcd.cleanup();
  for (const c of clients) c.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function etcdClient(): Etcd3 {
  const client = new Etcd3({ hosts: etcd.endpoint });
  clients.push(client);
  return client;
}

/** A fresh, empty store, and a second instance over the same data (no shared cache). */
type Backend = () => Promise<{ store: ModelStore; reopen: () => ModelStore }>;

const backends: Record<string, Backend> = {
  file: async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'vaquero-store-'));
    dirs.push(dir);
    return { store: new FileModelStore(dir), reopen: () => new FileModelStore(dir) };
  },
  etcd: () => {
    const prefix = `/test-${randomBytes(4).toString('hex')}/`;
    return Promise.resolve({
      store: new EtcdModelStore(etcdClient(), prefix),
      reopen: () => new EtcdModelStore(etcdClient(), prefix),
    });
  },
};

for (const [name, backend] of Object.entries(backends)) {
  describe(`ModelStore contract: ${name}`, () => {
    test('an empty store knows nothing', async () => {
      const { store } = await backend();
      assert.equal(await store.getRevision('0123abc'), undefined);
      assert.equal(await store.getApplied(), undefined);
      assert.equal(await store.getActiveRollout('fra1'), undefined);
    });

    test('a revision reads back equal, from another instance too', async () => {
      const { store, reopen } = await backend();
      await store.putRevision('c1', model);
      assert.deepEqual(await store.getRevision('c1'), model);
      assert.deepEqual(await reopen().getRevision('c1'), model);
      assert.equal(await reopen().getRevision('c2'), undefined);
    });

    test('the applied pointer moves and is seen by another instance', async () => {
      const { store, reopen } = await backend();
      await store.setApplied('c1');
      await store.setApplied('c2');
      assert.equal(await reopen().getApplied(), 'c2');
    });

    test('active rollouts are per site; concurrent updates are all kept', async () => {
      const { store, reopen } = await backend();
      const sites = Array.from({ length: 12 }, (_, i) => `site${i}`);
      await Promise.all(
        sites.map((site) => store.setActiveRollout(site, { workflowId: `rollout/${site}/c1`, commit: 'c1' })),
      );
      await store.setActiveRollout('site3', { workflowId: 'rollout/site3/c2', commit: 'c2' });
      const other = reopen();
      for (const site of sites) {
        const expected = site === 'site3' ? 'c2' : 'c1';
        assert.deepEqual(await other.getActiveRollout(site), {
          workflowId: `rollout/${site}/${expected}`,
          commit: expected,
        });
      }
    });

    test('the applied pointer is a compare-and-set; its history is kept, bounded, newest first', async () => {
      const { store, reopen } = await backend();
      const sha = (i: number) => i.toString(16).padStart(40, '0');
      const entry = (i: number) => ({
        commit: sha(i),
        at: new Date(i).toISOString(),
        trigger: 'push' as const,
      });
      assert.equal(await store.advanceApplied(undefined, entry(1)), true);
      assert.equal(await store.advanceApplied(undefined, entry(2)), false, 'no longer nothing applied');
      assert.equal(await store.advanceApplied(sha(9), entry(2)), false, 'not the applied commit');
      // Two servers (or two applies) racing from the same commit: exactly one wins.
      const racing = await Promise.all(
        [2, 3, 4, 5].map((i) => reopen().advanceApplied(sha(1), { ...entry(i), previous: sha(1) })),
      );
      assert.equal(racing.filter(Boolean).length, 1);
      const winner = sha([2, 3, 4, 5][racing.indexOf(true)]!);
      assert.equal(await reopen().getApplied(), winner);
      assert.deepEqual(
        (await reopen().getAppliedHistory()).map((e) => e.commit),
        [winner, sha(1)],
      );
      let applied = winner;
      for (let i = 10; i < 10 + APPLIED_HISTORY_LIMIT; i++) {
        assert.ok(await store.advanceApplied(applied, entry(i)));
        applied = sha(i);
      }
      const history = await reopen().getAppliedHistory();
      assert.equal(history.length, APPLIED_HISTORY_LIMIT);
      assert.equal(history[0]?.commit, applied);
    });

    test('a commit id that could escape its key or path is refused', async () => {
      const { store } = await backend();
      await assert.rejects(store.putRevision('../x', model), /invalid commit id/);
      await assert.rejects(store.getRevision('a/b'), /invalid commit id/);
    });
  });
}

describe('EtcdModelStore', () => {
  test('a revision larger than etcd accepts in one request is chunked and reads back whole', async () => {
    // Random bytes do not compress: ~3 MiB of base64 is 3 chunks after gzip.
    const big: Model = {
      ...model,
      assets: { ...model.assets, 'blob.b64': randomBytes(2_400_000).toString('base64') },
    };
    const prefix = `/big-${randomBytes(4).toString('hex')}/`;
    await new EtcdModelStore(etcdClient(), prefix).putRevision('big', big);
    assert.deepEqual(await new EtcdModelStore(etcdClient(), prefix).getRevision('big'), big);
    const chunkKeys = await etcdClient().getAll().prefix(`${prefix}chunks/`).keys();
    // gzip packs base64 of random bytes to ~76%: 2.4 MiB over chunks of CHUNK_BYTES.
    assert.equal(chunkKeys.length, Math.ceil(2_430_000 / CHUNK_BYTES));
  });

  test('what was written survives kill -9 of etcd and a restart', async () => {
    const prefix = `/crash-${randomBytes(4).toString('hex')}/`;
    const store = new EtcdModelStore(etcdClient(), prefix);
    await store.putRevision('c9', model);
    await store.setApplied('c9');
    await store.setActiveRollout('fra1', { workflowId: 'rollout/fra1/c9', commit: 'c9' });
    await etcd.kill();
    await etcd.restart();
    const again = new EtcdModelStore(etcdClient(), prefix);
    assert.deepEqual(await again.getRevision('c9'), model);
    assert.equal(await again.getApplied(), 'c9');
    assert.deepEqual(
      await again.listActiveRollouts(),
      new Map([['fra1', { workflowId: 'rollout/fra1/c9', commit: 'c9' }]]),
    );
    assert.deepEqual(await again.listRevisions(), ['c9']);
  });
});
