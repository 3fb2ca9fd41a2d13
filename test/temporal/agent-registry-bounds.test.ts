// The real `vaquero server` process against an agent token used as a weapon: a site token that
// invents agent names must not grow the registry (and /api/v1/agents) without bound, an agent that
// stopped calling is forgotten, and an agent's own token reports for that agent only.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { API_TOKEN } from '../helpers/server-http';
import { startServerProcess, temporalUp, type ServerProcess } from '../helpers/server-process';

const SITE_TOKEN = 'vaq_agent_lab1_site_5f0c2e9d';
const A1_TOKEN = 'vaq_agent_lab1_a1_93b71c04';

/** `vaquero server` with the given `agents:` section. */
function startServer(dir: string, agents: string[]): Promise<ServerProcess> {
  return startServerProcess(
    dir,
    [
      'api: { tokens: [{ name: ops, token: { env: VAQ_REG_API } }] }',
      'agents:',
      ...agents.map((l) => `  ${l}`),
    ],
    { VAQ_REG_API: API_TOKEN, VAQ_REG_SITE: SITE_TOKEN, VAQ_REG_A1: A1_TOKEN },
    // The request log of 20,000 heartbeats is not this test's business.
    { quiet: true },
  );
}

const beat = (url: string, token: string, agent: string) =>
  fetch(`${url}/agent/v1/heartbeat`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ agent, version: '0.1.0', site: 'lab1' }),
  });

const listing = async (url: string, p = '/api/v1/agents') => {
  const res = await fetch(`${url}${p}`, { headers: { authorization: `Bearer ${API_TOKEN}` } });
  assert.equal(res.status, 200);
  return res.text();
};

describe('the agent registry of the real server', { concurrency: false }, () => {
  let dir = '';
  let defaults: ServerProcess | undefined;
  let tuned: ServerProcess | undefined;

  before(async () => {
    if (!(await temporalUp())) return;
    dir = await mkdtemp(path.join(tmpdir(), 'vaquero-agent-registry-'));
    const site = '{ site: lab1, name: lab1-agents, token: { env: VAQ_REG_SITE } }';
    const started = await Promise.allSettled([
      // The defaults alone bound the registry.
      startServer(path.join(dir, 'defaults'), [`tokens: [${site}]`]),
      startServer(path.join(dir, 'tuned'), [
        'tokens:',
        `  - ${site}`,
        '  - { site: lab1, name: lab1-a1, agent: a1, token: { env: VAQ_REG_A1 } }',
        'unreachable_after_s: 1',
        'forget_after_s: 2',
        'max_agents_per_site: 3',
      ]),
    ]);
    // One that did not start must not leave the other running (and polling this namespace).
    const failed = started.find((r) => r.status === 'rejected');
    if (failed) {
      for (const r of started) if (r.status === 'fulfilled') await r.value.stop();
      throw failed.reason;
    }
    [defaults, tuned] = started.map((r) => (r as PromiseFulfilledResult<ServerProcess>).value);
  });
  after(async () => {
    for (const s of [defaults, tuned]) if (s) assert.equal(await s.stop(), 0, 'exits cleanly on SIGTERM');
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('20,000 heartbeats with invented names leave a bounded agents list', async (t) => {
    if (!defaults) return t.skip('no Temporal server');
    const url = defaults.url;
    const statuses = new Map<number, number>();
    let refusal = '';
    const N = 20_000;
    let next = 0;
    const worker = async () => {
      while (next < N) {
        const res = await beat(url, SITE_TOKEN, `fake-${next++}`);
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        const body = await res.text();
        if (res.status === 429 && !refusal) refusal = body;
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    const accepted = statuses.get(200) ?? 0;
    assert.deepEqual([...statuses.keys()].sort(), [200, 429], JSON.stringify([...statuses]));
    assert.ok(accepted >= 8 && accepted <= 256, `accepted ${accepted} names`);
    assert.match(refusal, /site lab1 already has \d+ agents .*max_agents_per_site/);
    const body = await listing(url);
    const agents = (JSON.parse(body) as { sites: { agents: unknown[] }[] }).sites[0]?.agents ?? [];
    assert.equal(agents.length, accepted);
    assert.ok(body.length < 100_000, `/api/v1/agents is ${body.length} bytes`);
    // Agents already known keep reporting while the site is full.
    assert.equal((await beat(url, SITE_TOKEN, 'fake-0')).status, 200);
  });

  test('an agent silent past forget_after_s leaves the list; the site stays unreachable', async (t) => {
    if (!tuned) return t.skip('no Temporal server');
    const url = tuned.url;
    assert.equal((await beat(url, SITE_TOKEN, 'gone')).status, 200);
    let site = JSON.parse(await listing(url, '/api/v1/sites/lab1/agents')) as {
      state: string;
      agents: { agent: string }[];
    };
    assert.equal(site.state, 'reachable');
    assert.deepEqual(
      site.agents.map((a) => a.agent),
      ['gone'],
    );
    await new Promise((r) => setTimeout(r, 3_000));
    site = JSON.parse(await listing(url, '/api/v1/sites/lab1/agents')) as typeof site;
    assert.deepEqual(site.agents, [], 'forgotten after forget_after_s');
    assert.equal(site.state, 'unreachable', 'a site whose agents were forgotten is not "unknown"');
  });

  test("an agent's own token reports for that agent only, and the site token cannot claim it", async (t) => {
    if (!tuned) return t.skip('no Temporal server');
    const url = tuned.url;
    const other = await beat(url, A1_TOKEN, 'a2');
    assert.equal(other.status, 403);
    assert.match(await other.text(), /token lab1-a1 reports for agent a1 only, not a2/);
    const spoof = await beat(url, SITE_TOKEN, 'a1');
    assert.equal(spoof.status, 403);
    assert.match(await spoof.text(), /agent a1 has its own token/);
    // The site token fills the site's slots; a1 still gets in with its own token.
    for (const name of ['s1', 's2', 's3']) assert.equal((await beat(url, SITE_TOKEN, name)).status, 200);
    assert.equal((await beat(url, SITE_TOKEN, 's4')).status, 429);
    assert.equal((await beat(url, A1_TOKEN, 'a1')).status, 200);
    const site = JSON.parse(await listing(url, '/api/v1/sites/lab1/agents')) as {
      agents: { agent: string; token: string; identity: string }[];
    };
    const a1 = site.agents.find((a) => a.agent === 'a1');
    assert.deepEqual(a1 && { token: a1.token, identity: a1.identity }, {
      token: 'lab1-a1',
      identity: 'agent',
    });
    assert.equal(site.agents.find((a) => a.agent === 's1')?.identity, 'site');
  });
});
