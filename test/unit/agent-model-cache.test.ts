// The agent's model cache against a real file model store (the standalone feed): it follows the
// applied revision, keeps it on disk, and after a restart without its feed still serves it.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { validateSot } from '../../sot/validate';
import { FileModelStore } from '../../activities/store/file-store';
import { createFileFeed } from '../../agent/feed/file-feed';
import { ModelCache } from '../../agent/state/model-cache';
import type { SiteRevision } from '../../agent/feed/model-feed';
import { exampleSot, sotMin } from '../helpers/sot';

function recordingLogger() {
  const lines: { level: string; msg: string; fields?: object }[] = [];
  return {
    lines,
    info: (msg: string, fields?: object) => lines.push({ level: 'info', msg, fields }),
    warn: (msg: string, fields?: object) => lines.push({ level: 'warn', msg, fields }),
  };
}

test('the cache follows the applied revision and serves it after a restart without its feed', async (t) => {
  const work = await mkdtemp(path.join(tmpdir(), 'vq-model-cache-'));
  t.after(() => rm(work, { recursive: true, force: true }));
  const storeDir = path.join(work, 'store');
  const stateDir = path.join(work, 'agent');
  const { model: lab, diagnostics } = await validateSot(sotMin);
  assert.ok(lab, JSON.stringify(diagnostics));
  const { model: example } = await validateSot(exampleSot);
  assert.ok(example);
  const store = new FileModelStore(storeDir);
  // Two commits of one site: the second is the example SoT with lab1 grafted in, so the site stays.
  await store.putRevision('c1', lab);
  await store.putRevision('c2', { ...example, sites: { ...example.sites, lab1: lab.sites.lab1! } });

  const logger = recordingLogger();
  const feed = createFileFeed(storeDir, 'lab1');
  const cache = await ModelCache.open({ stateDir, site: 'lab1', feed, pollMs: 20, logger });
  t.after(() => cache.stop());
  assert.throws(() => cache.current(), /no model for site lab1 yet/);
  const changes: string[] = [];
  cache.onChange((rev: SiteRevision) => changes.push(rev.commit));

  await cache.refresh();
  assert.equal(cache.currentRevision(), undefined, 'nothing applied yet: nothing to serve');
  const ready = cache.ready();
  await store.setApplied('c1');
  cache.start();
  assert.equal((await ready).commit, 'c1');
  assert.deepEqual(Object.keys(cache.current().sites), ['lab1']);
  assert.equal((await readFile(path.join(stateDir, 'models/current'), 'utf8')).trim(), 'c1');

  await store.setApplied('c2');
  await waitFor(() => cache.currentRevision()?.commit === 'c2');
  assert.deepEqual(changes, ['c1', 'c2']);
  // Only the agent's own site is kept, not the example's fra1 and iad1.
  assert.deepEqual(Object.keys(cache.current().sites), ['lab1']);
  assert.deepEqual(
    Object.keys(cache.current().os),
    Object.keys(example.os),
    'the shared catalogs come whole',
  );

  // The store goes away: polls keep failing, the log says so once, the model stays.
  await rm(storeDir, { recursive: true });
  const before = logger.lines.length;
  await new Promise((resolve) => setTimeout(resolve, 200));
  const outage = logger.lines.slice(before).filter((l) => l.level === 'warn');
  assert.equal(outage.length, 1, JSON.stringify(outage));
  assert.match(outage[0]!.msg, /model feed unreachable/);
  assert.equal(cache.currentRevision()?.commit, 'c2');
  await cache.stop();

  // A restart with the feed still down: the cache serves c2 from disk, and c1 for an armed host.
  const restartedLog = recordingLogger();
  const restarted = await ModelCache.open({ stateDir, site: 'lab1', feed, pollMs: 20, logger: restartedLog });
  restarted.start();
  t.after(() => restarted.stop());
  assert.equal(restarted.currentRevision()?.commit, 'c2');
  assert.deepEqual(restarted.current(), cache.current());
  assert.deepEqual(Object.keys((await restarted.forCommit('c1'))?.sites ?? {}), ['lab1']);
  assert.equal(await restarted.forCommit('c9'), undefined);
  assert.equal(await restarted.forCommit('../etc/passwd'), undefined);
  assert.deepEqual((await readdir(path.join(stateDir, 'models'))).sort(), ['c1.json', 'c2.json', 'current']);

  // The store comes back with a new applied commit: the cache says so once and moves on.
  const back = new FileModelStore(storeDir);
  await back.putRevision('c3', lab);
  await back.setApplied('c3');
  await waitFor(() => restarted.currentRevision()?.commit === 'c3');
  const msgs = restartedLog.lines.map((l) => l.msg);
  assert.equal(msgs.filter((m) => /unreachable/.test(m)).length, 1);
  assert.equal(msgs.filter((m) => /reachable again/.test(m)).length, 1);
});

test('a revision without the agent site is refused and the current model kept', async (t) => {
  const work = await mkdtemp(path.join(tmpdir(), 'vq-model-cache-'));
  t.after(() => rm(work, { recursive: true, force: true }));
  const { model: lab } = await validateSot(sotMin);
  assert.ok(lab);
  const logger = recordingLogger();
  let served: SiteRevision = { commit: 'good', model: lab };
  const feed = { current: () => Promise.resolve(served), revision: () => Promise.resolve(undefined) };
  const cache = await ModelCache.open({ stateDir: work, site: 'lab1', feed, logger });
  await cache.refresh();
  assert.equal(cache.currentRevision()?.commit, 'good');
  served = { commit: 'other', model: { ...lab, sites: {} } };
  await cache.refresh();
  assert.equal(cache.currentRevision()?.commit, 'good');
  assert.ok(logger.lines.some((l) => l.level === 'warn' && /unreachable/.test(l.msg)));
});

async function waitFor(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
