// The real `vaquero server` process against hostile and careless input: prototype keys as names,
// invented header values, oversized and empty bodies, a plan to the applied commit. Every answer is a
// clear 4xx, /metrics stays bounded, and the server is still up afterwards.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FileModelStore } from '../../activities/store/file-store';
import { validateSot } from '../../sot/validate';
import { API_TOKEN, githubHeaders, HOOK, WEBHOOK_SECRET } from '../helpers/server-http';
import { sotMin } from '../helpers/sot';
import { startServerProcess, temporalUp, type ServerProcess } from '../helpers/server-process';

const AGENT_TOKEN = 'vaq_agent_lab1_0123456789abcdef';
const APPLIED = 'a'.repeat(40);
/** Every member of Object.prototype, and the two names that reach it by other paths. */
const PROTOTYPE_KEYS = [...Object.getOwnPropertyNames(Object.prototype), 'prototype', '__proto__'];

/** The real server with sot-min applied as commit APPLIED. */
async function startHardenedServer(dir: string): Promise<ServerProcess> {
  const { model } = await validateSot(sotMin);
  assert.ok(model, 'sot-min is valid');
  const models = new FileModelStore(path.join(dir, 'store'));
  await models.putRevision(APPLIED, model);
  await models.setApplied(APPLIED);
  return startServerProcess(
    dir,
    [
      `sources: [{ name: ${HOOK}, kind: git, repo: ${dir}, webhook_secret: { env: VAQ_HARD_HOOK } }]`,
      'api: { tokens: [{ name: ops, token: { env: VAQ_HARD_TOKEN } }] }',
      'agents: { tokens: [{ site: lab1, name: lab1-agent, token: { env: VAQ_HARD_AGENT } }] }',
    ],
    { VAQ_HARD_HOOK: WEBHOOK_SECRET, VAQ_HARD_TOKEN: API_TOKEN, VAQ_HARD_AGENT: AGENT_TOKEN },
  );
}

const auth = (token = API_TOKEN) => ({ authorization: `Bearer ${token}` });

describe('vaquero server against hostile input', { concurrency: false }, () => {
  let dir = '';
  let server: ServerProcess | undefined;
  const url = () => server!.url;

  before(async () => {
    if (!(await temporalUp())) return;
    dir = await mkdtemp(path.join(tmpdir(), 'vaquero-hardening-'));
    server = await startHardenedServer(dir);
  });
  after(async () => {
    if (server) assert.equal(await server.stop(), 0, 'the server exits cleanly on SIGTERM');
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('every prototype key as a site, host, commit, hook or signal name is a 4xx, never a 500', async (t) => {
    if (!server) return t.skip('no Temporal server');
    const answers: string[] = [];
    const expect4xx = async (what: string, res: Promise<Response>) => {
      const r = await res;
      const body = await r.text();
      if (r.status < 400 || r.status >= 500) answers.push(`${what}: ${r.status} ${body}`);
      else assert.match(body, /"error":/, what);
    };
    const post = (p: string, body: unknown, headers: Record<string, string> = auth()) =>
      fetch(`${url()}${p}`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    for (const key of PROTOTYPE_KEYS) {
      const k = encodeURIComponent(key);
      await expect4xx(`site ${key}`, fetch(`${url()}/api/v1/sites/${k}/hosts`, { headers: auth() }));
      // The agent registry answers any site name (a site it has not heard of is `unknown`), but no
      // prototype member may show up as an agent.
      const agents = await fetch(`${url()}/api/v1/sites/${k}/agents`, { headers: auth() });
      assert.deepEqual(((await agents.json()) as { agents: unknown }).agents, [], `agents of ${key}`);
      await expect4xx(`revision ${key}`, fetch(`${url()}/api/v1/revisions/${k}`, { headers: auth() }));
      await expect4xx(`plan to ${key}`, fetch(`${url()}/api/v1/plan?to=${k}`, { headers: auth() }));
      await expect4xx(
        `status ${key}`,
        fetch(`${url()}/api/v1/rollouts/${k}/abcdef1/status`, { headers: auth() }),
      );
      await expect4xx(`signal ${key}`, post(`/api/v1/rollouts/lab1/abcdef1/${k}`, {}));
      await expect4xx(`retry-host ${key}`, post('/api/v1/rollouts/lab1/abcdef1/retry-host', { host: key }));
      await expect4xx(
        `model of ${key}`,
        fetch(`${url()}/agent/v1/model?site=${k}`, { headers: auth(AGENT_TOKEN) }),
      );
      await expect4xx(
        `agent model ${key}`,
        fetch(`${url()}/agent/v1/model/${k}`, { headers: auth(AGENT_TOKEN) }),
      );
      await expect4xx(
        `heartbeat site ${key}`,
        post('/agent/v1/heartbeat', { agent: 'lab1-agent', version: '1', site: key }, auth(AGENT_TOKEN)),
      );
      const body = '{}';
      await expect4xx(
        `hook ${key}`,
        fetch(`${url()}/postreceive/${k}`, { method: 'POST', headers: githubHeaders('push', body), body }),
      );
    }
    assert.deepEqual(answers, [], 'every prototype key is refused with a 4xx and a JSON error');
    assert.doesNotMatch(server.output(), /"msg":"request failed"/, 'no request failed inside the server');
    const sites = await fetch(`${url()}/api/v1/sites/lab1/hosts`, { headers: auth() });
    assert.equal(sites.status, 200, 'the real site still answers');
  });

  test('random header values on every route leave /metrics bounded', async (t) => {
    if (!server) return t.skip('no Temporal server');
    const metricsSize = async () => (await (await fetch(`${url()}/metrics`)).text()).length;
    const routes: [string, string][] = [
      ['POST', `/postreceive/${HOOK}`],
      ['POST', '/postreceive/nope'],
      ['GET', '/api/v1/rollouts'],
      ['POST', '/api/v1/rollouts/lab1/abcdef1/pause'],
      ['GET', '/agent/v1/model'],
      ['POST', '/agent/v1/heartbeat'],
      ['GET', '/ready'],
      ['GET', `/no/such/route/${randomBytes(4).toString('hex')}`],
    ];
    const send = (method: string, p: string) => {
      const junk = () => randomBytes(12).toString('hex');
      const headers: Record<string, string> = {
        'x-github-event': junk(),
        'x-github-delivery': junk(),
        'x-hub-signature-256': `sha256=${junk()}`,
        'content-type': `application/${junk()}`,
        authorization: `Bearer ${junk()}`,
        'user-agent': junk(),
        [`x-${junk()}`]: junk(),
      };
      return fetch(`${url()}${p}`, { method, headers, body: method === 'POST' ? junk() : undefined });
    };
    // Warm every series a legitimate refusal can create, then measure what junk adds on top of that.
    for (const [method, p] of routes) for (let i = 0; i < 3; i++) await (await send(method, p)).arrayBuffer();
    const baseline = await metricsSize();
    for (let i = 0; i < 2_000; i++) {
      const [method, p] = routes[i % routes.length]!;
      const res = await send(method, `${p}${i % 2 ? '' : `?${randomBytes(4).toString('hex')}=1`}`);
      assert.ok(res.status < 500, `${method} ${p}: ${res.status}`);
      await res.arrayBuffer();
    }
    const grown = (await metricsSize()) - baseline;
    // Counters grow a few digits each; a new series per junk value would add hundreds of kilobytes.
    assert.ok(grown < 4_096, `/metrics grew by ${grown} bytes after 2,000 junk requests`);
    const text = await (await fetch(`${url()}/metrics`)).text();
    assert.match(text, /vaquero_webhook_deliveries_total\{hook="lab",event="other",outcome="refused_415"\}/);
  });

  test('bodies over the limit are 413; empty, whitespace or non-object JSON is 400', async (t) => {
    if (!server) return t.skip('no Temporal server');
    const big = Buffer.alloc(5 * 1024 * 1024, 0x20);
    const cases: [string, string, Record<string, string>, string | Buffer, number, RegExp][] = [
      ['heartbeat 5 MB', '/agent/v1/heartbeat', auth(AGENT_TOKEN), big, 413, /larger than 65536 bytes/],
      ['pause 5 MB of whitespace', '/api/v1/rollouts/lab1/abcdef1/pause', auth(), big, 413, /larger than/],
      ['pause, empty body', '/api/v1/rollouts/lab1/abcdef1/pause', auth(), '', 400, /empty/],
      ['pause, whitespace', '/api/v1/rollouts/lab1/abcdef1/pause', auth(), ' \n\t ', 400, /empty/],
      ['pause, an array', '/api/v1/rollouts/lab1/abcdef1/pause', auth(), '[]', 400, /JSON object/],
      ['pause, null', '/api/v1/rollouts/lab1/abcdef1/pause', auth(), 'null', 400, /JSON object/],
      ['pause, a number', '/api/v1/rollouts/lab1/abcdef1/pause', auth(), '7', 400, /JSON object/],
      ['heartbeat, whitespace', '/agent/v1/heartbeat', auth(AGENT_TOKEN), '   ', 400, /not JSON/],
      ['heartbeat, an array', '/agent/v1/heartbeat', auth(AGENT_TOKEN), '[1]', 400, /invalid heartbeat/],
    ];
    for (const [what, p, headers, body, status, message] of cases) {
      const res = await fetch(`${url()}${p}`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body,
      });
      assert.equal(res.status, status, what);
      assert.match(await res.text(), message, what);
    }
    // A streamed body without a length is cut off at the limit too.
    const chunks = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 64; i++) controller.enqueue(new Uint8Array(64 * 1024).fill(0x20));
        controller.close();
      },
    });
    const streamed = await fetch(`${url()}/agent/v1/heartbeat`, {
      method: 'POST',
      headers: { ...auth(AGENT_TOKEN), 'content-type': 'application/json' },
      body: chunks,
      duplex: 'half',
    });
    assert.equal(streamed.status, 413);
  });

  test('a plan to the applied commit is no change, from the applied commit', async (t) => {
    if (!server) return t.skip('no Temporal server');
    const res = await fetch(`${url()}/api/v1/plan?to=${APPLIED}`, { headers: auth() });
    assert.equal(res.status, 200);
    const plan = (await res.json()) as { from: string; sites: { waves: { hosts: unknown[] }[] }[] };
    assert.equal(plan.from, APPLIED);
    const hosts = plan.sites.flatMap((s) => s.waves.flatMap((w) => w.hosts));
    assert.deepEqual(hosts, [], 'no host changes');
  });
});
