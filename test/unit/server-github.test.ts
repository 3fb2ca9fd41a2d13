import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Client } from '@temporalio/client';
import { FileModelStore } from '../../activities/store/file-store';
import { parseServerConfig, type Secrets } from '../../server/config';
import { GitHubPullRequestChecks } from '../../server/github/pull-requests';
import { createApp } from '../../server/http/app';
import { createMetrics } from '../../server/http/metrics';
import { githubHeaders, memoryLog, randomSha, signature, WEBHOOK_SECRET } from '../helpers/server-http';

const run = promisify(execFile);
const fixture = fileURLToPath(new URL('../fixtures/sot-sim', import.meta.url));
const REPO = 'acme/sot';
const GITHUB_TOKEN = 'ghs_h4TestToken0123456789';

interface Recorded {
  method: string;
  url: string;
  authorization?: string;
  body?: Record<string, unknown>;
}

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'vaquero-h4-gh-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function bodyOf(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

/**
 * GitHub's REST API as far as the server uses it, on loopback: commit statuses, check runs (403 when
 * `checkRuns` is false, as GitHub answers a token that is not a GitHub App's), and commit tarballs.
 */
async function githubStandIn(t: TestContext, tarballs: Map<string, Buffer>, checkRuns = true) {
  const requests: Recorded[] = [];
  const server = createServer((req, res) => {
    void (async () => {
      const text = await bodyOf(req);
      const url = req.url ?? '';
      requests.push({
        method: req.method ?? '',
        url,
        authorization: req.headers.authorization,
        body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined,
      });
      const json = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      const tarball = /^\/repos\/acme\/sot\/tarball\/([0-9a-f]{40})$/.exec(url);
      if (req.method === 'GET' && tarball) {
        const data = tarballs.get(tarball[1] ?? '');
        if (!data) return json(404, { message: 'Not Found' });
        res.writeHead(200, { 'content-type': 'application/x-gzip' });
        return res.end(data);
      }
      if (req.method === 'POST' && /^\/repos\/acme\/sot\/statuses\/[0-9a-f]{40}$/.test(url))
        return json(201, { id: requests.length, state: 'ok' });
      if (req.method === 'POST' && url === '/repos/acme/sot/check-runs')
        return checkRuns
          ? json(201, { id: requests.length })
          : json(403, { message: 'Resource not accessible by personal access token' });
      json(404, { message: 'Not Found' });
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

/** The tarball GitHub serves for a commit: the tree under one <owner>-<repo>-<sha7>/ directory. */
async function tarballOf(t: TestContext, sot: string, sha: string): Promise<Buffer> {
  const dir = await tempDir(t);
  const top = path.join(dir, `acme-sot-${sha.slice(0, 7)}`);
  await cp(sot, path.join(top, 'sot'), { recursive: true });
  await writeFile(path.join(top, 'README.md'), '# the datacenter\n');
  const file = path.join(dir, 'commit.tar.gz');
  await run('tar', ['-c', '-z', '-f', file, '-C', dir, path.basename(top)]);
  return readFile(file);
}

function prPayload(sha: string, options: { action?: string; base?: string } = {}) {
  return {
    action: options.action ?? 'opened',
    number: 42,
    pull_request: {
      number: 42,
      state: 'open',
      title: 'sim1: two more workers',
      head: { ref: 'more-workers', sha, repo: { full_name: 'contributor/sot' } },
      base: { ref: options.base ?? 'main', sha: randomSha(), repo: { full_name: REPO } },
    },
    repository: { full_name: REPO },
    sender: { login: 'octocat' },
  };
}

async function setup(t: TestContext, options: { checkRuns?: boolean; tokenAllowsChecks?: boolean } = {}) {
  const tarballs = new Map<string, Buffer>();
  const github = await githubStandIn(t, tarballs, options.tokenAllowsChecks ?? true);
  const dir = await tempDir(t);
  const config = parseServerConfig({
    sources: [
      {
        name: 'prod',
        kind: 'github',
        repo: REPO,
        checkout: path.join(dir, 'clone'),
        path: 'sot',
        webhook_secret: { env: 'UNUSED' },
      },
    ],
    github: { api_url: github.url, token: { env: 'UNUSED' }, check_runs: options.checkRuns ?? true },
    api: { tokens: [{ name: 'ops', token: { env: 'UNUSED' } }] },
  });
  const secrets: Secrets = {
    webhooks: new Map([['prod', WEBHOOK_SECRET]]),
    apiTokens: [{ name: 'ops', token: 'unused-api-token' }],
    githubToken: GITHUB_TOKEN,
  };
  const store = new FileModelStore(path.join(dir, 'store'));
  const metrics = createMetrics({ processMetrics: false });
  const pullRequests = new GitHubPullRequestChecks({ config, token: GITHUB_TOKEN, store, metrics });
  const { log, lines } = memoryLog();
  // PR checks never reach Temporal: a client that never connects is enough.
  const temporal = new Client({ namespace: 'vaquero-test' });
  const app = createApp({ config, secrets, temporal, store, metrics, pullRequests, log });
  const deliver = (event: string, body: string, sig?: string | null, extra: Record<string, string> = {}) =>
    app.request('/postreceive/prod', {
      method: 'POST',
      headers: { ...githubHeaders(event, body, sig), ...extra },
      body,
    });
  return { github, tarballs, dir, pullRequests, deliver, lines, metrics, store };
}

describe('pull_request webhooks: validate and plan the head commit, report to GitHub', () => {
  test('a valid head commit gets a pending then a success status and a check run with the plan', async (t) => {
    const env = await setup(t);
    const sha = randomSha();
    env.tarballs.set(sha, await tarballOf(t, fixture, sha));
    const res = await env.deliver('pull_request', JSON.stringify(prPayload(sha)));
    assert.equal(res.status, 202);
    assert.deepEqual(await res.json(), { status: 'checking', sha });
    await env.pullRequests.idle();

    const calls = env.github.requests.map((r) => `${r.method} ${r.url}`);
    assert.deepEqual(calls, [
      `POST /repos/acme/sot/statuses/${sha}`,
      `GET /repos/acme/sot/tarball/${sha}`,
      `POST /repos/acme/sot/statuses/${sha}`,
      'POST /repos/acme/sot/check-runs',
    ]);
    for (const r of env.github.requests) assert.equal(r.authorization, `token ${GITHUB_TOKEN}`);
    const [pending, , done, check] = env.github.requests;
    assert.deepEqual(pending?.body, {
      state: 'pending',
      context: 'vaquero/plan',
      description: 'validating and planning',
    });
    assert.equal(done?.body?.state, 'success');
    assert.match(String(done?.body?.description), /^valid; \d+ hosts to reprovision in 1 sites$/);
    assert.equal(check?.body?.head_sha, sha);
    assert.equal(check?.body?.conclusion, 'success');
    const output = check?.body?.output as { text: string; title: string };
    // Nothing is applied yet, so every host of the fixture is new, in waves.
    assert.match(output.text, new RegExp(`plan ${sha} \\(from \\(nothing applied\\)\\)`));
    assert.match(output.text, /site sim1 .*to reprovision/);
    assert.match(output.text, /WAVE +GROUP +HOST +WHY/);
    assert.ok(!JSON.stringify(env.lines).includes(GITHUB_TOKEN), 'the token is never logged');
    assert.match(
      await env.metrics.registry.metrics(),
      /vaquero_pull_request_checks_total\{outcome="success"\} 1/,
    );
  });

  test('an invalid head commit fails with the problem count in at most 140 characters', async (t) => {
    const env = await setup(t, { tokenAllowsChecks: false });
    const broken = path.join(await tempDir(t), 'sot');
    await cp(fixture, broken, { recursive: true });
    await writeFile(path.join(broken, 'sites/sim1/hosts/workers.yaml'), 'hosts:\n  - name: [unclosed\n');
    const sha = randomSha();
    env.tarballs.set(sha, await tarballOf(t, broken, sha));
    assert.equal(
      (await env.deliver('pull_request', JSON.stringify(prPayload(sha, { action: 'synchronize' })))).status,
      202,
    );
    await env.pullRequests.idle();
    const statuses = env.github.requests.filter((r) => r.url.includes('/statuses/'));
    const final = statuses.at(-1)?.body;
    assert.equal(final?.state, 'failure');
    const description = String(final?.description);
    assert.ok(description.length <= 140, description);
    assert.match(description, /^invalid: \d+ problems; first: .*workers\.yaml/);
    // The token may not create check runs (403): the status alone reports, and that is logged.
    assert.ok(env.lines.some((l) => l.msg.startsWith('check run not created')));
  });

  test('a commit GitHub does not have is an error status, not a crash', async (t) => {
    const env = await setup(t, { checkRuns: false });
    const sha = randomSha();
    assert.equal(
      (await env.deliver('pull_request', JSON.stringify(prPayload(sha, { action: 'reopened' })))).status,
      202,
    );
    await env.pullRequests.idle();
    assert.deepEqual(
      env.github.requests.map((r) => [r.method, r.body?.state]),
      [
        ['POST', 'pending'],
        ['GET', undefined],
        ['POST', 'error'],
      ],
    );
  });

  test('closed PRs, PRs into other branches and other repositories start nothing', async (t) => {
    const env = await setup(t);
    const sha = randomSha();
    const other = {
      ...prPayload(sha),
      pull_request: {
        ...prPayload(sha).pull_request,
        base: { ref: 'main', repo: { full_name: 'evil/sot' } },
      },
    };
    for (const payload of [prPayload(sha, { action: 'closed' }), prPayload(sha, { base: 'dev' }), other]) {
      const res = await env.deliver('pull_request', JSON.stringify(payload));
      assert.equal(res.status, 202);
      assert.equal(((await res.json()) as { status: string }).status, 'ignored');
    }
    await env.pullRequests.idle();
    assert.deepEqual(env.github.requests, []);
  });

  test('bad signature, malformed JSON, a wrong content type and a 10 MB body are 4xx and start nothing', async (t) => {
    const env = await setup(t);
    const body = JSON.stringify(prPayload(randomSha()));
    assert.equal((await env.deliver('pull_request', body, signature(body, 'wrong secret'))).status, 401);
    assert.equal((await env.deliver('pull_request', body, null)).status, 401);
    const notJson = '{"action": "opened", ';
    const malformed = await env.deliver('pull_request', notJson);
    assert.equal(malformed.status, 400);
    assert.match(((await malformed.json()) as { error: string }).error, /not JSON/);
    const asForm = await env.deliver('pull_request', body, undefined, {
      'content-type': 'application/x-www-form-urlencoded',
    });
    assert.equal(asForm.status, 415);
    const huge = JSON.stringify({ ...prPayload(randomSha()), padding: 'x'.repeat(10 * 1024 * 1024) });
    const tooBig = await env.deliver('pull_request', huge);
    assert.equal(tooBig.status, 413);
    await env.pullRequests.idle();
    assert.deepEqual(env.github.requests, [], 'nothing reached GitHub');
    const metrics = await env.metrics.registry.metrics();
    assert.match(
      metrics,
      /vaquero_webhook_deliveries_total\{hook="prod",event="pull_request",outcome="refused_401"\} 2/,
    );
    assert.match(
      metrics,
      /vaquero_webhook_deliveries_total\{hook="prod",event="pull_request",outcome="refused_413"\} 1/,
    );
  });
});
