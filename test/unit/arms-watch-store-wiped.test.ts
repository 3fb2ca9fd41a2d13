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
