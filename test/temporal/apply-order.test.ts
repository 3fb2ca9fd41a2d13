// Issue 18, items 1-3: pushes applied in Git order and once, against a real server process's app,
// worker and Temporal, real git repositories (a bare origin, a work clone, the server's checkout)
// and deliveries signed as GitHub signs them.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { appendFile, cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { FileModelStore } from '../../activities/store/file-store';
import { applyWorkflowId, SERVER_TASK_QUEUE } from '../../schemas/rollout';
import { parseServerConfig } from '../../server/config';
import { startServer } from '../../server/main';
import type { applyCommitWorkflow } from '../../workflows/apply-commit';
import { ensureNamespace, registerSearchAttributes } from '../../server/temporal-setup';
import {
  API_TOKEN,
  githubHeaders,
  HOOK,
  memoryLog,
  pushPayload,
  WEBHOOK_SECRET,
} from '../helpers/server-http';
import { connectOrSkip, temporalAddress, workflowBundle } from '../helpers/temporal';

const run = promisify(execFile);
const fixture = fileURLToPath(new URL('../fixtures/sot-sim', import.meta.url));
const NAMESPACE = process.env.VAQUERO_TEST_NAMESPACE ?? 'vaquero-h18-apply';

async function terminateRunning(client: Client, reason: string) {
  for await (const wf of client.workflow.list({ query: 'ExecutionStatus = "Running"' }))
    await client.workflow
      .getHandle(wf.workflowId)
      .terminate(reason)
      .catch(() => undefined);
}

/** origin (bare), a work clone that commits and pushes, and the server's checkout (a clone too). */
async function repos(dir: string) {
  const git = async (cwd: string, ...args: string[]) =>
    (
      await run('git', ['-C', cwd, '-c', 'user.name=t', '-c', 'user.email=t@localhost', ...args])
    ).stdout.trim();
  const origin = path.join(dir, 'origin.git');
  const work = path.join(dir, 'work');
  const checkout = path.join(dir, 'checkout');
  await run('git', ['init', '--quiet', '--bare', '--initial-branch=main', origin]);
  await run('git', ['clone', '--quiet', origin, work]);
  await git(work, 'checkout', '--quiet', '-b', 'main');
  await cp(fixture, path.join(work, 'sot'), { recursive: true });
  const commit = async (message: string, line = `# ${message}`) => {
    await appendFile(path.join(work, 'sot/os/sim.yaml'), `${line}\n`);
    await git(work, 'add', '--all');
    await git(work, 'commit', '--quiet', '-m', message);
    return git(work, 'rev-parse', 'HEAD');
  };
  const push = (...args: string[]) => git(work, 'push', '--quiet', ...args, 'origin', 'main');
  await commit('c0');
  await push();
  await run('git', ['clone', '--quiet', origin, checkout]);
  return { git, work, checkout, commit, push };
}

async function namespaceClient(t: TestContext, namespace: string) {
  const connection = await Connection.connect({ address: temporalAddress() });
  await ensureNamespace(connection, namespace, 1);
  await registerSearchAttributes(connection, namespace);
  const client = new Client({ connection, namespace });
  await terminateRunning(client, 'left over by an earlier run');
  t.after(async () => {
    await terminateRunning(client, 'test finished');
    await connection.close();
  });
  return client;
}

async function setup(t: TestContext) {
  if (!(await connectOrSkip(t))) return undefined;
  const client = await namespaceClient(t, NAMESPACE);
  const dir = await mkdtemp(path.join(tmpdir(), 'vaquero-h18-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const git = await repos(dir);
  const store = new FileModelStore(path.join(dir, 'store'));
  const { log, lines } = memoryLog();
  /** A server process's parts (HTTP app, worker) on `namespace`, over the one store and checkout. */
  const serve = async (namespace: string) => {
    const config = parseServerConfig({
      listen: { port: 0 },
      temporal: { address: temporalAddress(), namespace, setup: false },
      store: { dir: path.join(dir, 'store') },
      sources: [
        {
          name: HOOK,
          kind: 'git',
          repo: git.checkout,
          branch: 'main',
          path: 'sot',
          webhook_secret: { env: 'UNUSED' },
        },
      ],
      api: { tokens: [{ name: 'ops', token: { env: 'UNUSED' } }] },
    });
    const server = await startServer(config, {
      store,
      log,
      secrets: {
        webhooks: new Map([[HOOK, WEBHOOK_SECRET]]),
        apiTokens: [{ name: 'ops', token: API_TOKEN }],
      },
      workflows: { workflowBundle: await workflowBundle() },
    });
    t.after(() => server.stop());
    /** A signed push delivery; the same body again is a redelivery. */
    const deliver = async (body: string) => {
      const res = await fetch(`${server.url}/postreceive/${HOOK}`, {
        method: 'POST',
        headers: githubHeaders('push', body),
        body,
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    return { server, deliver };
  };
  const { server, deliver } = await serve(NAMESPACE);
  const pushBody = (sha: string) => JSON.stringify(pushPayload(sha));
  const applied = (sha: string) =>
    until(`${sha.slice(0, 7)} applied`, async () => (await store.getApplied()) === sha);
  const result = (sha: string) => client.workflow.getHandle(applyWorkflowId(sha)).result();
  return { ...git, client, store, server, serve, lines, deliver, pushBody, applied, result };
}

async function until(what: string, fn: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(100);
  }
}

const exists = (client: Client, sha: string) =>
  client.workflow
    .getHandle(applyWorkflowId(sha))
    .describe()
    .then(
      () => true,
      (err: unknown) => {
        if (err instanceof WorkflowNotFoundError) return false;
        throw err;
      },
    );

describe('applies in Git order, once, and never lost (issue 18)', () => {
  test('an older push delivered after a newer one is refused; only an operator forces a rewrite', async (t) => {
    const env = await setup(t);
    if (!env) return;
    const c1 = await env.commit('c1');
    const c2 = await env.commit('c2');
    await env.push();
    await env.git(env.checkout, 'fetch', '--quiet', 'origin');

    assert.equal((await env.deliver(env.pushBody(c2))).status, 202);
    await env.applied(c2);
    const older = await env.deliver(env.pushBody(c1));
    assert.equal(older.status, 409);
    assert.equal(older.body.status, 'stale');
    assert.match(String(older.body.reason), /ancestor of the applied commit/);
    assert.equal(await exists(env.client, c1), false, 'no apply started for the older commit');
    assert.ok(env.lines.some((l) => l.msg.startsWith('push refused') && l.fields.commit === c1));

    // A delivery that passed the server's check while another apply moved on: the workflow refuses.
    const raced = await env.client.workflow.execute<typeof applyCommitWorkflow>('applyCommitWorkflow', {
      taskQueue: SERVER_TASK_QUEUE,
      workflowId: applyWorkflowId(c1),
      args: [{ commit: c1, source: path.join(env.checkout, 'sot'), trigger: 'push' }],
    });
    assert.deepEqual(
      { outcome: raced.outcome, rollouts: raced.rollouts },
      { outcome: 'stale', rollouts: [] },
    );
    const phase = (await env.client.workflow.getHandle(applyWorkflowId(c1)).describe()).searchAttributes;
    assert.deepEqual(phase.VaqueroPhase, ['stale']);
    assert.equal(await env.store.getApplied(), c2);

    // History rewritten: c1, then c3 instead of c2, force-pushed.
    await env.git(env.work, 'reset', '--quiet', '--hard', c1);
    const c3 = await env.commit('c3, rewritten');
    await env.push('--force');
    await env.git(env.checkout, 'fetch', '--quiet', 'origin');
    const rewritten = await env.deliver(env.pushBody(c3));
    assert.equal(rewritten.status, 409);
    assert.match(String(rewritten.body.reason), /not a descendant of the applied commit/);
    assert.match(String(rewritten.body.reason), /--force/);

    const forced = await fetch(`${env.server.url}/api/v1/apply`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ commit: c3, force: true }),
    });
    assert.equal(forced.status, 202);
    await env.applied(c3);
    const [last] = await env.store.getAppliedHistory();
    assert.deepEqual(
      { commit: last?.commit, previous: last?.previous, forced: last?.forced, trigger: last?.trigger },
      { commit: c3, previous: c2, forced: true, trigger: 'operator' },
    );
  });

  test('a redelivered push whose apply workflow is gone is a duplicate by the store', async (t) => {
    const env = await setup(t);
    if (!env) return;
    const c1 = await env.commit('c1');
    await env.push();
    await env.git(env.checkout, 'fetch', '--quiet', 'origin');
    const body = env.pushBody(c1);
    const first = await env.deliver(body);
    assert.equal(first.status, 202);
    await env.result(c1);
    // The workflow gone as after the retention (or a Temporal cluster rebuilt): the same store, and a
    // namespace that never saw apply/<c1>.
    const fresh = `${NAMESPACE}-fresh`;
    const other = await namespaceClient(t, fresh);
    await env.client.workflowService.deleteWorkflowExecution({
      namespace: NAMESPACE,
      workflowExecution: { workflowId: applyWorkflowId(c1) },
    });
    const { deliver } = await env.serve(fresh);
    const again = await deliver(body);
    assert.equal(again.status, 200);
    assert.equal(again.body.status, 'duplicate');
    assert.match(String(again.body.reason), /applied at .* \(push [0-9a-f-]{36}\)/);
    assert.equal(await exists(other, c1), false, 'nothing re-applied');
    const history = await env.store.getAppliedHistory();
    assert.equal(history.length, 1);
    assert.equal(history[0]?.commit, c1);
    assert.equal(history[0]?.trigger, 'push');
    assert.match(history[0]?.delivery ?? '', /^[0-9a-f-]{36}$/);
  });

  test('a push that arrives before the checkout has its commit is fetched and applied', async (t) => {
    const env = await setup(t);
    if (!env) return;
    const c1 = await env.commit('c1');
    // The webhook first; the commit reaches origin a moment later, the checkout never by itself.
    assert.equal((await env.deliver(env.pushBody(c1))).status, 202);
    await delay(1_500);
    await env.push();
    await env.result(c1);
    assert.equal(await env.store.getApplied(), c1);
  });

  test('a redelivery of a failed apply runs again; a completed one stays a duplicate', async (t) => {
    const env = await setup(t);
    if (!env) return;
    const bad = await env.commit('broken', 'this: is: not yaml: [');
    await env.push();
    await env.git(env.checkout, 'fetch', '--quiet', 'origin');
    const body = env.pushBody(bad);
    assert.equal((await env.deliver(body)).status, 202);
    const invalid = (err: Error) =>
      /not a valid source of truth/.test((err.cause as Error | undefined)?.message ?? '');
    await assert.rejects(env.result(bad), invalid);
    const again = await env.deliver(body);
    assert.deepEqual([again.status, again.body.status], [202, 'started']);
    await assert.rejects(env.result(bad), invalid);
  });
});
