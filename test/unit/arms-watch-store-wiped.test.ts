// The server's boot-state store is wiped (or restored from an older backup) while an agent runs: the
// site's revision starts again below the one the agent holds. The agent takes the new state whole at
// its next answer — it neither keeps serving the old arms nor spins asking the server again and again.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { BootStateStore } from '../../activities/store/boot-state-store';
import { FileBootDocs } from '../../activities/store/file-boot-docs';
import { createServerFeed } from '../../agent/feed/server-feed';
import { SiteBootClient } from '../../agent/feed/site-boot-client';
import { watchArms } from '../../agent/state/arms-watch';
import { NetbootTable } from '../../agent/state/netboot-table';
import type { ArmEntry } from '../../schemas/agent';
import { listen } from '../../server/http/listen';
import { AGENT_TOKENS, agentApp } from '../helpers/agent-api';

const entry = (i: number): ArmEntry => ({
  mac: `52:54:00:00:07:0${i}`,
  site: 'fra1',
  host: `h${i}`,
  commit: 'abc1234',
  stage: 1,
  workflowId: `host/fra1/h${i}/abc1234`,
  armedAt: new Date().toISOString(),
  token: 't'.repeat(32),
});

test('an agent takes the site arms whole when the server store was wiped under it', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'vaquero-arms-wiped-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const storeAt = (name: string) => new BootStateStore(new FileBootDocs(path.join(dir, name)));
  let current = agentApp(undefined, { bootState: storeAt('before') });
  let armsAsked = 0;
  const server = await listen(
    {
      fetch: (req: Request) => {
        if (new URL(req.url).pathname === '/agent/v1/arms') armsAsked++;
        return current.app.fetch(req);
      },
    },
    { listen: { host: '127.0.0.1', port: 0 } },
  );
  t.after(() => server.close());
  const warnings: string[] = [];
  const logger = { info: () => undefined, warn: (m: string) => warnings.push(m) };
  const agent = (name: string) => {
    const feed = createServerFeed({
      url: `http://127.0.0.1:${server.port}`,
      token: AGENT_TOKENS.fra1,
      site: 'fra1',
    });
    const client = new SiteBootClient(feed, name);
    const table = new NetbootTable(path.join(dir, name, 'netboot.json'), client);
    const watch = watchArms(client, table, logger, { waitMs: 500, retryMs: 100 });
    t.after(async () => {
      await watch.stop();
      feed.close();
    });
    return { table, watch };
  };
  const a = agent('a');
  await a.watch.ready;
  for (const i of [1, 2, 3]) await a.table.arm(entry(i));
  assert.equal(a.table.heldRevision(), 3);

  // The store is gone: a new one, whose counter starts at 0, and a host armed there by another agent.
  current = agentApp(undefined, { bootState: storeAt('after') });
  const b = agent('b');
  await b.watch.ready;
  await b.table.arm(entry(4));
  const started = Date.now();
  while ((await a.table.list()).map((e) => e.host).join() !== 'h4') {
    assert.ok(
      Date.now() - started < 2_000,
      `agent a still holds ${(await a.table.list()).map((e) => e.host).join()}`,
    );
    await sleep(20);
  }
  t.diagnostic(`the new state taken whole after ${Date.now() - started} ms`);
  assert.equal(a.table.heldRevision(), 1);
  assert.ok(!a.table.isArmedNow(entry(1).mac), 'an arm of the wiped store is gone');
  assert.ok(
    warnings.some((w) => /went back/.test(w)),
    warnings.join('\n'),
  );

  // And it waits again: long polls of 500 ms, not a request after another.
  const asked = armsAsked;
  await sleep(1_000);
  assert.ok(armsAsked - asked <= 6, `${armsAsked - asked} watch requests in 1 s`);
});

test('a new store that got as far as the old one is told apart by its epoch, not trusted', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'vaquero-arms-epoch-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const storeAt = (name: string) => new BootStateStore(new FileBootDocs(path.join(dir, name)));
  const before = storeAt('before');
  let current = agentApp(undefined, { bootState: before });
  let up = true;
  const server = await listen(
    // While `up` is false the agent is cut off from the server (503), as in a partition.
    { fetch: (req: Request) => (up ? current.app.fetch(req) : new Response('down', { status: 503 })) },
    { listen: { host: '127.0.0.1', port: 0 } },
  );
  t.after(() => server.close());
  const warnings: string[] = [];
  const logger = { info: () => undefined, warn: (m: string) => warnings.push(m) };
  const feed = createServerFeed({
    url: `http://127.0.0.1:${server.port}`,
    token: AGENT_TOKENS.fra1,
    site: 'fra1',
  });
  const client = new SiteBootClient(feed, 'a');
  const table = new NetbootTable(path.join(dir, 'a', 'netboot.json'), client);
  const watch = watchArms(client, table, logger, { waitMs: 500, retryMs: 100 });
  t.after(async () => {
    await watch.stop();
    feed.close();
  });
  await watch.ready;
  for (const i of [1, 2]) await table.arm(entry(i));
  for (let i = 0; table.heldEpoch() === undefined; i++) {
    assert.ok(i < 100, 'the watch never brought the epoch');
    await sleep(20);
  }
  const oldEpoch = table.heldEpoch();
  assert.equal((await before.arms('fra1')).epoch, oldEpoch);

  // Cut off; meanwhile the store is replaced by a new one that reaches the same revision, 2.
  up = false;
  await sleep(300);
  const after = storeAt('after');
  await after.arm('fra1', entry(3));
  await after.arm('fra1', entry(4));
  assert.equal((await after.arms('fra1')).revision, table.heldRevision(), 'the same revision');
  current = agentApp(undefined, { bootState: after });
  up = true;
  const started = Date.now();
  while ((await table.list()).map((e) => e.host).join() !== 'h3,h4') {
    assert.ok(
      Date.now() - started < 2_000,
      `the agent still holds ${(await table.list()).map((e) => e.host).join()}`,
    );
    await sleep(20);
  }
  t.diagnostic(`the other store's arms taken whole ${Date.now() - started} ms after the partition ended`);
  assert.notEqual(table.heldEpoch(), oldEpoch);
  assert.ok(!table.isArmedNow(entry(1).mac), 'an arm of the replaced store is gone');
  assert.ok(
    warnings.some((w) => /epoch changed/.test(w)),
    warnings.join('\n'),
  );
});

test('an agent that does not ask with epoch= gets no epoch (agents older than the field)', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'vaquero-arms-noepoch-'));
  try {
    const store = new BootStateStore(new FileBootDocs(dir));
    await store.arm('fra1', entry(1));
    const { app } = agentApp(undefined, { bootState: store });
    const ask = async (query: string) => {
      const res = await app.request(`/agent/v1/arms?since=-1&${query}`, {
        headers: { authorization: `Bearer ${AGENT_TOKENS.fra1}` },
      });
      assert.equal(res.status, 200);
      return (await res.json()) as Record<string, unknown>;
    };
    assert.deepEqual(Object.keys(await ask('wait_ms=0')).sort(), ['arms', 'revision']);
    assert.equal(typeof (await ask('wait_ms=0&epoch=')).epoch, 'string');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
