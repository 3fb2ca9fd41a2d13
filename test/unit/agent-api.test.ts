// /agent/v1 and the agents list, through the HTTP app: each site's token sees its own site's model
// only, heartbeats register agents, and a site whose agents fall silent is reported unreachable.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '@temporalio/client';
import { FileModelStore } from '../../activities/store/file-store';
import { validateSot } from '../../sot/validate';
import { modelForSite, type Model } from '../../schemas/model';
import { parseServerConfig, resolveSecrets } from '../../server/config';
import { createApp } from '../../server/http/app';
import { agentApp, AGENT_TOKENS, authHeader } from '../helpers/agent-api';
import { API_TOKEN, memoryLog } from '../helpers/server-http';

let model: Model;
let dir: string;
let store: FileModelStore;

before(async () => {
  const result = await validateSot(path.join(import.meta.dirname, '../../examples/sot'));
  assert.ok(result.model, 'examples/sot validates');
  model = result.model;
  assert.ok(model.sites.fra1 && model.sites.iad1, 'two sites');
  dir = await mkdtemp(path.join(tmpdir(), 'vaquero-agent-api-'));
  store = new FileModelStore(dir);
  await store.putRevision('c1', model);
  await store.putRevision('c2', { ...model, assets: { ...model.assets, 'motd.txt': 'two\n' } });
  await store.setApplied('c2');
});
after(() => rm(dir, { recursive: true, force: true }));

describe('agent API', () => {
  test("GET /agent/v1/model: the applied revision cut to the token's site", async () => {
    const { app } = agentApp(store);
    const res = await app.request('/agent/v1/model', { headers: authHeader(AGENT_TOKENS.fra1) });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { commit: string; model: Model };
    assert.equal(body.commit, 'c2');
    assert.deepEqual(Object.keys(body.model.sites), ['fra1']);
    const expected = modelForSite((await store.getRevision('c2'))!, 'fra1');
    assert.deepEqual(body.model, expected);
    assert.ok(!Object.keys(body.model.sources).some((k) => k.includes('iad1')), 'nothing of iad1 leaks');
  });

  test('GET /agent/v1/model/:commit: an older revision; unknown ones are 404', async () => {
    const { app } = agentApp(store);
    const headers = authHeader(AGENT_TOKENS.iad1);
    const old = await app.request('/agent/v1/model/c1', { headers });
    assert.equal(old.status, 200);
    const body = (await old.json()) as { commit: string; model: Model };
    assert.equal(body.commit, 'c1');
    assert.deepEqual(Object.keys(body.model.sites), ['iad1']);
    assert.equal(body.model.assets['motd.txt'], undefined);
    const missing = await app.request('/agent/v1/model/deadbeef', { headers });
    assert.equal(missing.status, 404);
    assert.match(((await missing.json()) as { error: string }).error, /no revision deadbeef/);
    assert.equal((await app.request('/agent/v1/model/..%2Fx', { headers })).status, 400);
  });

  test('no token or an unknown one is 401; a site token used for another site is 403', async () => {
    const { app } = agentApp(store);
    const routes: [string, RequestInit][] = [
      ['/agent/v1/model', {}],
      ['/agent/v1/model/c1', {}],
      [
        '/agent/v1/heartbeat',
        { method: 'POST', body: JSON.stringify({ agent: 'a', version: '1', site: 'fra1' }) },
      ],
    ];
    for (const [url, init] of routes) {
      const none = await app.request(url, init);
      assert.equal(none.status, 401, `${url} without a token`);
      assert.match(none.headers.get('www-authenticate') ?? '', /Bearer/);
      const wrong = await app.request(url, { ...init, headers: authHeader('not-a-token') });
      assert.equal(wrong.status, 401, `${url} with a wrong token`);
      // The user API's token is not an agent token.
      assert.equal((await app.request(url, { ...init, headers: authHeader(API_TOKEN) })).status, 401);
      const other = await app.request(`${url}?site=fra1`, {
        ...init,
        headers: authHeader(AGENT_TOKENS.iad1),
      });
      assert.equal(other.status, 403, `${url} with iad1's token for fra1`);
      assert.match(
        ((await other.json()) as { error: string }).error,
        /site iad1 does not give access to site fra1/,
      );
    }
    const beat = await app.request('/agent/v1/heartbeat', {
      method: 'POST',
      headers: { ...authHeader(AGENT_TOKENS.iad1), 'content-type': 'application/json' },
      body: JSON.stringify({ agent: 'a', version: '1', site: 'fra1' }),
    });
    assert.equal(beat.status, 403, "a heartbeat for another site's agent");
  });

  test('heartbeats list agents per site; a site whose agents all fall silent is unreachable', async () => {
    const { app } = agentApp(store, { unreachableAfterS: 0.4 });
    const beat = (token: string, agent: string, site: string) =>
      app.request('/agent/v1/heartbeat', {
        method: 'POST',
        headers: { ...authHeader(token), 'content-type': 'application/json' },
        body: JSON.stringify({ agent, version: '0.1.0', site }),
      });
    assert.equal((await beat(AGENT_TOKENS.fra1, 'fra1-a', 'fra1')).status, 200);
    assert.equal((await beat(AGENT_TOKENS.fra1, 'fra1-b', 'fra1')).status, 200);
    assert.equal((await beat(AGENT_TOKENS.iad1, 'iad1-a', 'iad1')).status, 200);
    const list = async (site: string) => {
      const res = await app.request(`/api/v1/sites/${site}/agents`, { headers: authHeader(API_TOKEN) });
      assert.equal(res.status, 200);
      return (await res.json()) as {
        state: string;
        agents: { agent: string; version: string; state: string }[];
      };
    };
    const fra1 = await list('fra1');
    assert.equal(fra1.state, 'reachable');
    assert.deepEqual(
      fra1.agents.map((a) => [a.agent, a.version, a.state]),
      [
        ['fra1-a', '0.1.0', 'reachable'],
        ['fra1-b', '0.1.0', 'reachable'],
      ],
    );
    assert.equal((await list('sim1')).state, 'unknown');
    await sleep(600);
    assert.equal((await beat(AGENT_TOKENS.fra1, 'fra1-b', 'fra1')).status, 200);
    const later = await list('fra1');
    assert.equal(later.state, 'reachable', 'one live agent keeps the site reachable');
    assert.deepEqual(
      later.agents.map((a) => a.state),
      ['silent', 'reachable'],
    );
    assert.equal((await list('iad1')).state, 'unreachable');
    assert.equal((await app.request('/api/v1/sites/fra1/agents')).status, 401, 'the list needs a user token');
    const all = await app.request('/api/v1/agents', { headers: authHeader(API_TOKEN) });
    assert.deepEqual(
      ((await all.json()) as { sites: { site: string; state: string }[] }).sites.map((s) => [
        s.site,
        s.state,
      ]),
      [
        ['fra1', 'reachable'],
        ['iad1', 'unreachable'],
      ],
    );
  });

  test('before anything is applied the model is 404, which the agent reads as "nothing yet"', async () => {
    const empty = await mkdtemp(path.join(tmpdir(), 'vaquero-agent-api-empty-'));
    try {
      const { app } = agentApp(new FileModelStore(empty));
      const res = await app.request('/agent/v1/model', { headers: authHeader(AGENT_TOKENS.fra1) });
      assert.equal(res.status, 404);
      assert.match(((await res.json()) as { error: string }).error, /no revision has been applied yet/);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });

  test("the server app mounts the agent API with the config's tokens", async () => {
    const config = parseServerConfig({
      api: { tokens: [{ name: 'ops', token: { env: 'API' } }] },
      agents: { tokens: [{ site: 'fra1', name: 'fra1-agents', token: { env: 'FRA1' } }] },
    });
    const secrets = await resolveSecrets(config, {
      env: { API: API_TOKEN, FRA1: AGENT_TOKENS.fra1 },
      readFile: () => Promise.reject(new Error('no files')),
    });
    // A lazy client: nothing here calls Temporal.
    const app = createApp({ config, secrets, temporal: new Client(), store, log: memoryLog().log });
    const res = await app.request('/agent/v1/model', { headers: authHeader(AGENT_TOKENS.fra1) });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { commit: string }).commit, 'c2');
    assert.equal(
      (await app.request('/agent/v1/model', { headers: authHeader(AGENT_TOKENS.iad1) })).status,
      401,
    );
    const agents = await app.request('/api/v1/sites/fra1/agents', { headers: authHeader(API_TOKEN) });
    assert.equal(agents.status, 200);
  });
});
