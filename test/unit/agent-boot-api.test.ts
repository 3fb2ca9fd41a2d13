// The site boot state on /agent/v1 (server/http/agent-boot-api.ts) over the file store: arms and
// their watch, power claims and boot-traffic evidence, and every kind of bad request.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { BootStateStore } from '../../activities/store/boot-state-store';
import { FileBootDocs } from '../../activities/store/file-boot-docs';
import { AGENT_TOKENS, agentApp, authHeader } from '../helpers/agent-api';

const MAC = '52:54:00:aa:bb:01';
const entry = (over: Record<string, unknown> = {}) => ({
  mac: MAC,
  site: 'fra1',
  host: 'fra1-w01',
  commit: 'abc1234',
  stage: 1,
  workflowId: 'host/fra1/fra1-w01/abc1234',
  armedAt: new Date().toISOString(),
  token: 'x'.repeat(32),
  ...over,
});

async function setup(t: { after(fn: () => Promise<void>): void }) {
  const dir = await mkdtemp(path.join(tmpdir(), 'vaquero-boot-api-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const bootState = new BootStateStore(new FileBootDocs(dir));
  const { app } = agentApp(undefined, { bootState });
  const call = (method: string, url: string, body?: unknown, token: string = AGENT_TOKENS.fra1) =>
    app.request(`/agent/v1${url}`, {
      method,
      headers: { ...authHeader(token), 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
  return { dir, call };
}

test('an arm is durable when it is answered, and a watch wakes on it', async (t) => {
  const { dir, call } = await setup(t);
  const first = (await (await call('GET', '/arms')).json()) as { revision: number; arms: unknown[] };
  assert.deepEqual(first, { revision: 0, arms: [] });

  const started = Date.now();
  const watching = call('GET', '/arms?since=0&wait_ms=5000');
  await new Promise((r) => setTimeout(r, 100));
  const armed = await call('PUT', `/arms/${MAC}`, entry());
  assert.equal(armed.status, 200);
  assert.deepEqual(await armed.json(), { revision: 1 });
  // On the disk before the answer: a server restarted now still has it.
  const onDisk = JSON.parse(await readFile(path.join(dir, 'fra1.json'), 'utf8')) as {
    arms: { mac: string }[];
  };
  assert.deepEqual(
    onDisk.arms.map((a) => a.mac),
    [MAC],
  );
  const woke = (await (await watching).json()) as { revision: number; arms: { host: string }[] };
  assert.equal(woke.revision, 1);
  assert.equal(woke.arms[0]?.host, 'fra1-w01');
  assert.ok(Date.now() - started < 1000, `the watch answered ${Date.now() - started} ms after it began`);

  // Another workflow's disarm leaves the arm alone; its own removes it.
  const other = await call('DELETE', `/arms/${MAC}?workflow_id=host/fra1/fra1-w01/other`);
  assert.deepEqual(await other.json(), { revision: 1, disarmed: false });
  const own = await call('DELETE', `/arms/${MAC}?workflow_id=host/fra1/fra1-w01/abc1234`);
  assert.deepEqual(await own.json(), { revision: 2, disarmed: true });
  // A watch that is behind answers at once.
  const behind = (await (await call('GET', '/arms?since=1&wait_ms=5000')).json()) as { revision: number };
  assert.equal(behind.revision, 2);
});

test('a claim in doubt takes boot traffic seen since its begin as evidence; done settles it', async (t) => {
  const { call } = await setup(t);
  const key = 'host/fra1/fra1-w01/abc1234/run-1/stage-1';
  assert.equal((await call('GET', `/claims?key=${encodeURIComponent(key)}`)).status, 404);
  const begun = new Date().toISOString();
  const put = await call('PUT', `/claims?key=${encodeURIComponent(key)}`, {
    mac: MAC,
    at: begun,
    agent: 'a',
  });
  assert.equal(put.status, 200);
  // Traffic from before the begin is no evidence; from after it is.
  const before = new Date(Date.parse(begun) - 5000).toISOString();
  assert.deepEqual(await (await call('POST', '/seen', { seen: [{ mac: MAC, at: before }] })).json(), {
    marked: 0,
  });
  const after = new Date(Date.parse(begun) + 10).toISOString();
  assert.deepEqual(await (await call('POST', '/seen', { seen: [{ mac: MAC, at: after }] })).json(), {
    marked: 1,
  });
  const claim = (await (await call('GET', `/claims?key=${encodeURIComponent(key)}`)).json()) as Record<
    string,
    unknown
  >;
  assert.equal(claim.seen, after);
  assert.equal(claim.done, undefined);
  assert.equal((await call('POST', `/claims/done?key=${encodeURIComponent(key)}`)).status, 200);
  const done = (await (await call('GET', `/claims?key=${encodeURIComponent(key)}`)).json()) as Record<
    string,
    unknown
  >;
  assert.equal(typeof done.done, 'string');
  assert.equal((await call('POST', '/claims/done?key=nope')).status, 404);
});

test('bad requests: no token, another site, not JSON, wrong shapes, prototype names', async (t) => {
  const { call } = await setup(t);
  assert.equal((await call('GET', '/arms', undefined, 'nope')).status, 401);
  assert.equal((await call('GET', '/arms?site=iad1')).status, 403);
  const foreign = await call('PUT', `/arms/${MAC}`, entry({ site: 'iad1' }));
  assert.equal(foreign.status, 403);
  assert.match(((await foreign.json()) as { error: string }).error, /cannot arm in iad1/);
  const notJson = await call('PUT', `/arms/${MAC}`, '{"mac":');
  assert.equal(notJson.status, 400);
  assert.match(((await notJson.json()) as { error: string }).error, /not JSON/);
  const shape = await call('PUT', `/arms/${MAC}`, { mac: MAC });
  assert.equal(shape.status, 400);
  assert.match(((await shape.json()) as { error: string }).error, /invalid arm entry: site/);
  assert.equal((await call('PUT', `/arms/52:54:00:aa:bb:02`, entry())).status, 400);
  for (const bad of ['__proto__', 'constructor', 'toString'])
    assert.equal((await call('PUT', `/arms/${bad}`, entry({ mac: bad }))).status, 400, bad);
  assert.equal((await call('DELETE', '/arms/__proto__')).status, 400);
  assert.equal((await call('GET', '/arms?since=abc')).status, 400);
  assert.equal((await call('GET', '/claims')).status, 400);
  assert.equal((await call('GET', '/claims?key=a%20b')).status, 400);
  assert.equal(
    (await call('PUT', '/claims?key=k', { mac: '__proto__', at: new Date().toISOString() })).status,
    400,
  );
  assert.equal((await call('POST', '/seen', { seen: 'everything' })).status, 400);
  // Claim keys that are names of Object.prototype are plain keys, nothing more.
  for (const key of ['__proto__', 'constructor']) {
    assert.equal((await call('GET', `/claims?key=${key}`)).status, 404, key);
    const at = new Date().toISOString();
    assert.equal((await call('PUT', `/claims?key=${key}`, { mac: MAC, at })).status, 200, key);
    const got = (await (await call('GET', `/claims?key=${key}`)).json()) as { key: string };
    assert.equal(got.key, key);
  }
  assert.equal(({} as Record<string, unknown>).mac, undefined);
  // The other site's state is its own.
  const iad = (await (await call('GET', '/arms', undefined, AGENT_TOKENS.iad1)).json()) as {
    arms: unknown[];
  };
  assert.deepEqual(iad.arms, []);
});
