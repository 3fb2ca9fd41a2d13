// Two agents' netboot tables over the real agent API (in-process server on a loopback port): an arm
// through one is in the other within a second, an older watch answer never undoes a newer arm, the
// boot traffic of armed MACs reaches the claims, and a server that goes away leaves the cache serving.
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
import { SeenReporter, watchArms } from '../../agent/state/arms-watch';
import { NetbootTable } from '../../agent/state/netboot-table';
import type { ArmEntry } from '../../schemas/agent';
import type { BootEvent } from '../../schemas/rollout';
import { listen } from '../../server/http/listen';
import { AGENT_TOKENS, agentApp } from '../helpers/agent-api';

const entry = (mac: string, workflowId = `host/fra1/${mac}/abc1234`): ArmEntry => ({
  mac,
  site: 'fra1',
  host: `h-${mac.slice(-2)}`,
  commit: 'abc1234',
  stage: 1,
  workflowId,
  armedAt: new Date().toISOString(),
  token: 't'.repeat(32),
});
const quiet = { info: () => undefined, warn: () => undefined };
const logs: string[] = [];
const logger = { info: (m: string) => logs.push(m), warn: (m: string) => logs.push(m) };

async function until(what: string, ms: number, probe: () => boolean): Promise<number> {
  const started = Date.now();
  while (!probe()) {
    assert.ok(Date.now() - started < ms, `${what}: not within ${ms} ms`);
    await sleep(10);
  }
  return Date.now() - started;
}

test('two agents share arms through the server and keep their cache without it', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'vaquero-arms-watch-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const store = new BootStateStore(new FileBootDocs(path.join(dir, 'server')));
  const { app } = agentApp(undefined, { bootState: store });
  const server = await listen(app, { listen: { host: '127.0.0.1', port: 0 } }, undefined);
  let serverUp = true;
  t.after(() => (serverUp ? server.close() : undefined));
  const agent = (name: string) => {
    const feed = createServerFeed({
      url: `http://127.0.0.1:${server.port}`,
      token: AGENT_TOKENS.fra1,
      site: 'fra1',
    });
    const client = new SiteBootClient(feed, name);
    const table = new NetbootTable(path.join(dir, name, 'netboot.json'), client);
    const watch = watchArms(client, table, name === 'b' ? logger : quiet, { waitMs: 2_000, retryMs: 100 });
    t.after(async () => {
      await watch.stop();
      feed.close();
    });
    return { client, table, watch };
  };
  const a = agent('a');
  const b = agent('b');
  await Promise.all([a.watch.ready, b.watch.ready]);

  await a.table.arm(entry('52:54:00:00:00:01'));
  assert.ok(a.table.isArmedNow('52:54:00:00:00:01'), 'the arming agent has it when arm() resolves');
  const lag = await until('the arm at agent b', 1_000, () => b.table.isArmedNow('52:54:00:00:00:01'));
  t.diagnostic(`arm visible at the other agent after ${lag} ms`);

  // A watch answer older than the arm this agent just made does not undo it.
  await a.table.arm(entry('52:54:00:00:00:02'));
  assert.equal(await a.table.replace([], 0), false);
  assert.ok(a.table.isArmedNow('52:54:00:00:00:02'));

  // A disarm by another workflow leaves the arm; its own removes it everywhere.
  assert.equal(await b.table.disarm('52:54:00:00:00:02', 'host/fra1/other'), false);
  await sleep(100);
  assert.ok(a.table.isArmedNow('52:54:00:00:00:02'), 'another workflow’s disarm left it armed');
  assert.equal(await b.table.disarm('52:54:00:00:00:02', 'host/fra1/52:54:00:00:00:02/abc1234'), true);
  await until('the disarm at agent a', 1_000, () => !a.table.isArmedNow('52:54:00:00:00:02'));

  // Agent b hears the armed MAC after agent a's claim began: the claim has its evidence.
  const key = 'host/fra1/h-01/abc1234/run/stage-1';
  await a.client.begin(key, new Date().toISOString(), '52:54:00:00:00:01');
  const passed: BootEvent[] = [];
  const reporter = new SeenReporter(
    { emit: (e) => passed.push(e) },
    b.client,
    (mac) => b.table.isArmedNow(mac),
    quiet,
    50,
  );
  t.after(() => reporter.close());
  const at = new Date(Date.now() + 5).toISOString();
  reporter.emit({ kind: 'dhcp', mac: '52:54:00:00:00:01', stage: 1, at });
  reporter.emit({ kind: 'dhcp', mac: '52:54:00:00:00:09', stage: 1, at });
  assert.equal(passed.length, 2, 'every event is passed on');
  await reporter.flush();
  const state = await a.client.state(key);
  assert.deepEqual(state.state === 'in-doubt' && state.seen, at);

  // The server goes away: agent b's cache still says what was armed, on disk and in memory.
  await server.close();
  serverUp = false;
  await until('the outage is logged', 3_000, () =>
    logs.includes('site arms unreachable: serving the cached ones'),
  );
  assert.ok(b.table.isArmedNow('52:54:00:00:00:01'));
  const onDisk = new NetbootTable(path.join(dir, 'b', 'netboot.json'));
  assert.deepEqual(
    (await onDisk.list()).map((e) => e.mac),
    ['52:54:00:00:00:01'],
  );
  await assert.rejects(a.table.arm(entry('52:54:00:00:00:03')), /cannot reach the server/);
  assert.equal(
    a.table.isArmedNow('52:54:00:00:00:03'),
    false,
    'an arm the server did not take is not served',
  );
});
