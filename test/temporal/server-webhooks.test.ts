import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { Client, WorkflowNotFoundError } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { listen } from '../../server/http/listen';
import { applyWorkflowId, SERVER_TASK_QUEUE } from '../../schemas/rollout';
import { connectOrSkip } from '../helpers/temporal';
import {
  githubHeaders,
  HOOK,
  pingPayload,
  pushPayload,
  randomSha,
  signature,
  testApp,
} from '../helpers/server-http';

const NAMESPACE = process.env.VAQUERO_TEST_NAMESPACE ?? 'vaquero-test';
const SOURCE_REPO = '/srv/vaquero/sot-repo';

/** The app on a client of the test namespace; every apply/<sha> a test names is terminated after it. */
async function setup(t: TestContext) {
  const connection = await connectOrSkip(t);
  if (!connection) return undefined;
  const client = new Client({ connection, namespace: NAMESPACE });
  const shas: string[] = [];
  t.after(async () => {
    for (const sha of shas)
      await client.workflow
        .getHandle(applyWorkflowId(sha))
        .terminate('test finished')
        .catch(() => undefined);
  });
  const sha = () => {
    const s = randomSha();
    shas.push(s);
    return s;
  };
  return { client, sha, ...testApp(client, SOURCE_REPO) };
}

async function assertNotStarted(client: Client, sha: string) {
  await assert.rejects(client.workflow.getHandle(applyWorkflowId(sha)).describe(), WorkflowNotFoundError);
}

/** Visibility is eventually consistent: the count is read until it settles on the expected one. */
async function countApplies(client: Client, sha: string, expected: number): Promise<number> {
  let count = -1;
  for (let i = 0; i < 50 && count !== expected; i++) {
    if (i > 0) await delay(100);
    count = (await client.workflow.count(`WorkflowId = '${applyWorkflowId(sha)}'`)).count;
  }
  return count;
}

function post(app: ReturnType<typeof testApp>['app'], event: string, body: string, sig?: string | null) {
  return app.request(`/postreceive/${HOOK}`, {
    method: 'POST',
    headers: githubHeaders(event, body, sig),
    body,
  });
}

describe('POST /postreceive/:hook with GitHub payloads and HMAC signatures', () => {
  test('a push to the watched branch starts one apply workflow, however often it is delivered', async (t) => {
    const env = await setup(t);
    if (!env) return;
    const sha = env.sha();
    const body = JSON.stringify(pushPayload(sha));
    const answers = [];
    for (let i = 0; i < 3; i++) {
      const res = await post(env.app, 'push', body);
      answers.push([res.status, ((await res.json()) as { status: string }).status]);
    }
    assert.deepEqual(answers, [
      [202, 'started'],
      [200, 'duplicate'],
      [200, 'duplicate'],
    ]);
    const described = await env.client.workflow.getHandle(applyWorkflowId(sha)).describe();
    assert.equal(described.type, 'applyCommitWorkflow');
    assert.equal(described.taskQueue, SERVER_TASK_QUEUE);
    const history = await env.client.workflow.getHandle(applyWorkflowId(sha)).fetchHistory();
    const [input] = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads ?? [];
    assert.ok(input);
    const startInput = defaultPayloadConverter.fromPayload<Record<string, unknown>>(input);
    assert.match(String(startInput.delivery), /^[0-9a-f-]{36}$/, 'the delivery id, for the applied history');
    assert.deepEqual(
      { ...startInput, delivery: undefined },
      { commit: sha, source: `${SOURCE_REPO}/sot`, trigger: 'push', delivery: undefined },
    );
    assert.equal(await countApplies(env.client, sha, 1), 1, 'one workflow for the SHA');
    const started = env.lines.filter((l) => l.msg.startsWith('push applied'));
    assert.equal(started.length, 1);
    assert.equal(started[0]?.fields.workflowId, `apply/${sha}`);
    assert.ok(
      env.lines.every((l) => typeof l.fields.reqId === 'string'),
      'every line has a request id',
    );
  });

  test('a bad or missing signature is 401, logged without the payload, and starts nothing', async (t) => {
    const env = await setup(t);
    if (!env) return;
    const sha = env.sha();
    const body = JSON.stringify(pushPayload(sha));
    const forged = await post(env.app, 'push', body, signature(body, 'not the secret'));
    assert.equal(forged.status, 401);
    assert.match(((await forged.json()) as { error: string }).error, /does not match/);
    const tampered = await post(env.app, 'push', body.replace('octocat', 'mallory'), signature(body));
    assert.equal(tampered.status, 401);
    const unsigned = await post(env.app, 'push', body, null);
    assert.equal(unsigned.status, 401);
    assert.match(((await unsigned.json()) as { error: string }).error, /missing X-Hub-Signature-256/);
    const garbage = await post(env.app, 'push', body, 'sha256=zz');
    assert.equal(garbage.status, 401);

    const refusals = env.lines.filter((l) => l.msg.startsWith('webhook refused'));
    assert.equal(refusals.length, 4);
    const logged = JSON.stringify(env.lines);
    assert.ok(!logged.includes(sha) && !logged.includes('octocat'), 'the payload is not in the log');
    await assertNotStarted(env.client, sha);
  });

  test('other events, other branches and a deleted branch are 202 ignored; ping is 200', async (t) => {
    const env = await setup(t);
    if (!env) return;
    const sha = env.sha();
    const ping = await post(env.app, 'ping', JSON.stringify(pingPayload()));
    assert.equal(ping.status, 200);
    assert.deepEqual(await ping.json(), { status: 'pong', hook: HOOK });

    const issue = await post(env.app, 'issues', JSON.stringify({ action: 'opened', issue: { number: 1 } }));
    assert.equal(issue.status, 202);
    assert.match(((await issue.json()) as { reason: string }).reason, /event issues is not handled/);

    const feature = await post(env.app, 'push', JSON.stringify(pushPayload(sha, { ref: 'refs/heads/wip' })));
    assert.equal(feature.status, 202);
    assert.deepEqual(await feature.json(), {
      status: 'ignored',
      reason: 'a push to refs/heads/wip; this hook applies refs/heads/main',
    });
    const deleted = { ...pushPayload('0'.repeat(40), { before: sha }), deleted: true };
    const gone = await post(env.app, 'push', JSON.stringify(deleted));
    assert.equal(gone.status, 202);
    await assertNotStarted(env.client, sha);
  });

  test('a github source ignores pushes of another repository', async () => {
    const client = new Client({ namespace: NAMESPACE });
    const { app } = testApp(client, SOURCE_REPO, {
      sources: [
        {
          name: HOOK,
          kind: 'github',
          repo: 'vaquero-lab/other',
          checkout: '/var/lib/vaquero/other',
          webhook_secret: { env: 'UNUSED' },
        },
      ],
    });
    const res = await post(app, 'push', JSON.stringify(pushPayload(randomSha())));
    assert.equal(res.status, 202);
    assert.deepEqual(await res.json(), {
      status: 'ignored',
      reason: 'a push to vaquero-lab/sot; this hook watches vaquero-lab/other',
    });
  });

  test('malformed JSON, a non-push body, a form payload and an unknown hook are 4xx', async (t) => {
    const env = await setup(t);
    if (!env) return;
    const sha = env.sha();
    const broken = JSON.stringify(pushPayload(sha)).slice(0, -10);
    const malformed = await post(env.app, 'push', broken);
    assert.equal(malformed.status, 400);
    assert.deepEqual(await malformed.json(), {
      error: 'the payload is not JSON',
      requestId: malformed.headers.get('x-request-id'),
    });
    const notPush = await post(env.app, 'push', JSON.stringify({ ref: 'refs/heads/main', after: 'HEAD' }));
    assert.equal(notPush.status, 400);

    const form = `payload=${encodeURIComponent(JSON.stringify(pushPayload(sha)))}`;
    const formRes = await env.app.request(`/postreceive/${HOOK}`, {
      method: 'POST',
      headers: { ...githubHeaders('push', form), 'content-type': 'application/x-www-form-urlencoded' },
      body: form,
    });
    assert.equal(formRes.status, 415);

    const body = JSON.stringify(pushPayload(sha));
    const unknown = await env.app.request('/postreceive/nope', {
      method: 'POST',
      headers: githubHeaders('push', body),
      body,
    });
    assert.equal(unknown.status, 404);
    await assertNotStarted(env.client, sha);
  });

  test('a 10 MB body is 413, signed or not, and starts nothing', async (t) => {
    const env = await setup(t);
    if (!env) return;
    const sha = env.sha();
    const payload = { ...pushPayload(sha), padding: 'x'.repeat(10 * 1024 * 1024) };
    const body = JSON.stringify(payload);
    const res = await post(env.app, 'push', body);
    assert.equal(res.status, 413);
    assert.match(((await res.json()) as { error: string }).error, /larger than 5242880 bytes/);
    await assertNotStarted(env.client, sha);
  });

  test('over a real HTTP listener: a push starts its workflow, a 10 MB body is refused', async (t) => {
    const env = await setup(t);
    if (!env) return;
    const server = await listen(env.app, { listen: { host: '127.0.0.1', port: 0 } });
    t.after(() => server.close());
    const { port } = server;
    const url = `http://127.0.0.1:${port}/postreceive/${HOOK}`;

    const live = await fetch(`http://127.0.0.1:${port}/live`);
    assert.equal(live.status, 200);
    const ready = await fetch(`http://127.0.0.1:${port}/ready`);
    assert.equal(ready.status, 200);

    const sha = env.sha();
    const body = JSON.stringify(pushPayload(sha));
    const res = await fetch(url, { method: 'POST', headers: githubHeaders('push', body), body });
    assert.equal(res.status, 202);
    assert.deepEqual(await res.json(), { status: 'started', workflowId: `apply/${sha}`, commit: sha });
    assert.equal(
      (await env.client.workflow.getHandle(applyWorkflowId(sha)).describe()).type,
      'applyCommitWorkflow',
    );

    const big = env.sha();
    const bigBody = JSON.stringify({ ...pushPayload(big), padding: 'x'.repeat(10 * 1024 * 1024) });
    const refused = await fetch(url, {
      method: 'POST',
      headers: githubHeaders('push', bigBody),
      body: bigBody,
    });
    assert.equal(refused.status, 413);
    await assertNotStarted(env.client, big);
  });
});
