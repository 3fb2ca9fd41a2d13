import assert from 'node:assert/strict';
import path from 'node:path';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Client } from '@temporalio/client';
import { applyWorkflowId, SERVER_TASK_QUEUE, type SiteRolloutResult } from '../../schemas/rollout';
import type { applyCommitWorkflow } from '../../workflows/apply-commit';
import { validateSot } from '../../sot/validate';
import { FileModelStore } from '../../activities/store/file-store';
import { createApp } from '../../server/http/app';
import { API_TOKEN, memoryLog, testApp } from '../helpers/server-http';
import { startVaquero } from '../helpers/vaquero-env';

const fixture = fileURLToPath(new URL('../fixtures/sot-sim', import.meta.url));
const FAST = { dhcp: 5_000, ipxe: 5_000, kernel: 5_000, checkpoint: 5_000 };

type App = ReturnType<typeof testApp>['app'];

function call(app: App, method: string, url: string, options: { token?: string; body?: unknown } = {}) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  const body = options.body === undefined ? undefined : JSON.stringify(options.body);
  return app.request(url, { method, headers, body });
}

const ROUTES: [string, string][] = [
  ['GET', '/api/v1/rollouts'],
  ['GET', '/api/v1/rollouts/sim1/abcdef0/status'],
  ['POST', '/api/v1/rollouts/sim1/abcdef0/pause'],
  ['POST', '/api/v1/rollouts/sim1/abcdef0/resume'],
  ['POST', '/api/v1/rollouts/sim1/abcdef0/approve'],
  ['POST', '/api/v1/rollouts/sim1/abcdef0/abort'],
  ['POST', '/api/v1/rollouts/sim1/abcdef0/retry-host'],
  ['GET', '/api/v1/openapi.json'],
  ['GET', '/api/v1/sites'],
  ['GET', '/api/v1/sites/sim1/hosts'],
  ['GET', '/api/v1/plan?to=abcdef0'],
  ['GET', '/api/v1/revisions'],
  ['GET', '/api/v1/revisions/abcdef0'],
  ['POST', '/api/v1/apply'],
];

describe('user API /api/v1', () => {
  test('every route: no token is 401 with a challenge, a wrong token 403; the probes need none', async () => {
    // Refused requests never reach Temporal, so a lazy client that never connects is enough.
    const client = new Client({ namespace: 'vaquero-test' });
    const { app, lines } = testApp(client, '/srv/vaquero/sot-repo');
    for (const [method, url] of ROUTES) {
      const none = await call(app, method, url);
      assert.equal(none.status, 401, `${method} ${url} without a token`);
      assert.equal(none.headers.get('www-authenticate'), 'Bearer realm="vaquero"');
      const wrong = await call(app, method, url, { token: `${API_TOKEN}x` });
      assert.equal(wrong.status, 403, `${method} ${url} with a wrong token`);
      const basic = await app.request(url, { method, headers: { authorization: `Basic ${API_TOKEN}` } });
      assert.equal(basic.status, 401, `${method} ${url} with a non-bearer scheme`);
    }
    assert.ok(!JSON.stringify(lines).includes(API_TOKEN), 'no token in the log');
    assert.equal((await app.request('/live')).status, 200);
  });

  test('openapi.json is OpenAPI 3.1 and lists every route', async () => {
    const client = new Client({ namespace: 'vaquero-test' });
    const { app } = testApp(client, '/srv/vaquero/sot-repo');
    const res = await call(app, 'GET', '/api/v1/openapi.json', { token: API_TOKEN });
    assert.equal(res.status, 200);
    const doc = (await res.json()) as {
      openapi: string;
      paths: Record<string, Record<string, { requestBody?: { content: Record<string, unknown> } }>>;
    };
    assert.equal(doc.openapi, '3.1.0');
    const listed = Object.entries(doc.paths).flatMap(([p, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} /api/v1${p}`),
    );
    const template = (u: string) =>
      u
        .replace(/\?.*$/, '')
        .replace('sim1/abcdef0', '{site}/{sha7}')
        .replace('sites/sim1', 'sites/{site}')
        .replace('revisions/abcdef0', 'revisions/{commit}');
    const expected = ROUTES.map(([m, u]) => `${m} ${template(u)}`);
    assert.deepEqual(listed.sort(), expected.sort());
    const retry = doc.paths['/rollouts/{site}/{sha7}/retry-host']?.post?.requestBody;
    assert.deepEqual(
      (retry?.content['application/json'] as { schema: { required: string[] } }).schema.required,
      ['host'],
    );
  });

  test('sites, hosts, plans and revisions come from the model store', async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'vaquero-h4-api-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const store = new FileModelStore(dir);
    const { model } = await validateSot(fixture);
    assert.ok(model);
    const client = new Client({ namespace: 'vaquero-test' });
    const { app: bare } = testApp(client, '/srv/vaquero/sot-repo');
    const as = { token: API_TOKEN };
    assert.equal((await call(bare, 'GET', '/api/v1/sites', as)).status, 503, 'no store: 503');
    const { config } = testApp(client, '/srv/vaquero/sot-repo');
    const app = createApp({
      config,
      secrets: { webhooks: new Map([['lab', 'x']]), apiTokens: [{ name: 'ops', token: API_TOKEN }] },
      temporal: client,
      store,
      log: memoryLog().log,
    });
    assert.equal((await call(app, 'GET', '/api/v1/sites', as)).status, 404, 'nothing applied yet');
    const sha = 'a'.repeat(40);
    await store.putRevision(sha, model);
    await store.setApplied(sha);
    const sites = (await (await call(app, 'GET', '/api/v1/sites', as)).json()) as {
      commit: string;
      sites: { id: string; hosts: number }[];
    };
    assert.equal(sites.commit, sha);
    assert.deepEqual(
      sites.sites.map((s) => s.id),
      ['sim1'],
    );
    const hosts = (await (await call(app, 'GET', '/api/v1/sites/sim1/hosts', as)).json()) as {
      hosts: { name: string; lastReprovision: unknown }[];
    };
    assert.equal(hosts.hosts.length, sites.sites[0]?.hosts);
    assert.ok(
      hosts.hosts.every((h) => h.lastReprovision === null),
      'no rollout yet: no state',
    );
    assert.equal((await call(app, 'GET', '/api/v1/sites/nope/hosts', as)).status, 404);
    const plan = (await (await call(app, 'GET', `/api/v1/plan?to=${sha}`, as)).json()) as {
      from: string;
      to: string;
      sites: { waves: { hosts: unknown[] }[] }[];
    };
    // The applied commit against itself: no change, not "(nothing applied)".
    assert.deepEqual([plan.from, plan.to], [sha, sha]);
    assert.deepEqual(
      plan.sites.flatMap((s) => s.waves.flatMap((w) => w.hosts)),
      [],
    );
    assert.equal((await call(app, 'GET', '/api/v1/plan', as)).status, 400, 'to is required');
    assert.equal((await call(app, 'GET', `/api/v1/plan?to=${'b'.repeat(40)}`, as)).status, 404);
    const revision = (await (await call(app, 'GET', `/api/v1/revisions/${sha}`, as)).json()) as {
      sites: object;
    };
    assert.deepEqual(Object.keys(revision.sites), ['sim1']);
    assert.equal((await call(app, 'GET', '/api/v1/revisions/..%2Fetc', as)).status, 400);
  });

  test('list, status, pause, approve and resume of a real rollout waiting for approval', async (t) => {
    const env = await startVaquero(t, { fixture, sites: ['sim1'], simTimeScale: 0.005 });
    if (!env) return;
    const siteFile = path.join(env.sot, 'sites/sim1/site.yaml');
    await writeFile(
      siteFile,
      (await readFile(siteFile, 'utf8')).replace('approval_required: false', 'approval_required: true'),
    );
    const sha = await env.commit('first');
    const applied = await env.client.workflow.execute<typeof applyCommitWorkflow>('applyCommitWorkflow', {
      taskQueue: SERVER_TASK_QUEUE,
      workflowId: applyWorkflowId(sha),
      args: [{ commit: sha, source: env.sot, timeouts: FAST }],
    });
    const id = applied.rollouts[0]?.workflowId ?? '';
    assert.equal(id, `rollout/sim1/${sha.slice(0, 7)}`);
    const { app } = testApp(env.client, env.repo);
    const as = { token: API_TOKEN };
    const base = `/api/v1/rollouts/sim1/${sha.slice(0, 7)}`;
    const status = async () => {
      const res = await call(app, 'GET', `${base}/status`, as);
      assert.equal(res.status, 200);
      return (await res.json()) as { phase: string; workflowId: string; execution: string };
    };
    const until = async (what: (phase: string) => boolean) => {
      for (let i = 0; i < 300; i++) {
        const s = await status();
        if (what(s.phase)) return s;
        await delay(100);
      }
      throw new Error(`${id} never reached the phase expected`);
    };

    const waiting = await until((p) => p === 'waiting-approval');
    assert.equal(waiting.workflowId, id);
    assert.equal(waiting.execution, 'RUNNING');
    let listed: { rollouts: { workflowId: string; site: string; execution: string }[] } = { rollouts: [] };
    for (let i = 0; i < 50 && !listed.rollouts.some((r) => r.workflowId === id); i++) {
      if (i > 0) await delay(100);
      listed = (await (await call(app, 'GET', '/api/v1/rollouts?site=sim1', as)).json()) as typeof listed;
    }
    assert.deepEqual(
      listed.rollouts.filter((r) => r.workflowId === id).map((r) => [r.site, r.execution]),
      [['sim1', 'RUNNING']],
    );

    for (const signal of ['pause', 'approve']) {
      const res = await call(app, 'POST', `${base}/${signal}`, { ...as, body: {} });
      assert.equal(res.status, 200);
      const done = (await res.json()) as { status: string; signal: string; workflowId: string };
      assert.deepEqual([done.status, done.signal, done.workflowId], ['done', signal, id]);
    }
    await until((p) => p === 'paused');
    await delay(500);
    assert.equal((await env.cycles()).size, 1, 'paused: nothing after the canary started');

    const resumed = await call(app, 'POST', `${base}/resume`, { ...as, body: {} });
    assert.equal(resumed.status, 200);
    await until((p) => p !== 'paused');
    const result = (await env.client.workflow.getHandle(id).result()) as SiteRolloutResult;
    assert.equal(result.phase, 'completed');
  });

  test('bad bodies and names are 400, an unknown rollout 404, a closed one 409', async (t) => {
    const env = await startVaquero(t, { fixture, sites: ['sim1'], simTimeScale: 0.005 });
    if (!env) return;
    const sha = await env.commit('first');
    env.fault('sim1/cp-01', 'dhcp');
    await env.client.workflow.execute<typeof applyCommitWorkflow>('applyCommitWorkflow', {
      taskQueue: SERVER_TASK_QUEUE,
      workflowId: applyWorkflowId(sha),
      args: [{ commit: sha, source: env.sot, timeouts: FAST }],
    });
    const { app } = testApp(env.client, env.repo);
    const as = { token: API_TOKEN };
    const base = `/api/v1/rollouts/sim1/${sha.slice(0, 7)}`;

    const bad: [string, unknown, RegExp][] = [
      [`${base}/retry-host`, {}, /host/],
      [`${base}/abort`, { reason: 5 }, /reason/],
      [`${base}/pause`, { now: true }, /now/],
      [`${base}/pause`, undefined, /empty/],
      [`${base}/pause`, [], /JSON object/],
      [`${base}/explode`, {}, /signal/],
      ['/api/v1/rollouts/sim1/ZZZ/pause', {}, /sha7/],
    ];
    for (const [url, body, message] of bad) {
      const res = await call(app, 'POST', url, { ...as, body });
      assert.equal(res.status, 400, url);
      assert.match(((await res.json()) as { error: string }).error, message);
    }
    const unknown = await call(app, 'GET', '/api/v1/rollouts/sim1/abcdef0/status', as);
    assert.equal(unknown.status, 404);
    const running = await call(app, 'POST', `${base}/retry-host`, { ...as, body: { host: 'cp-02' } });
    assert.equal(running.status, 409, 'cp-02 has not failed');

    const aborted = await call(app, 'POST', `${base}/abort`, { ...as, body: { reason: 'bad image' } });
    assert.equal(aborted.status, 200);
    const result = (await env.client.workflow
      .getHandle(`rollout/sim1/${sha.slice(0, 7)}`)
      .result()) as SiteRolloutResult;
    assert.equal(result.phase, 'aborted');
    const late = await call(app, 'POST', `${base}/pause`, { ...as, body: {} });
    assert.equal(late.status, 409);
    assert.match(((await late.json()) as { error: string }).error, /is closed \(completed\)/);
  });
});
