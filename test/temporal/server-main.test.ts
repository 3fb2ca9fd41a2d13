import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { main } from '../../cli/main';
import { parseServerConfig } from '../../server/config';
import type { Leadership } from '../../server/ha/leader';
import { startServer } from '../../server/main';
import {
  API_TOKEN,
  githubHeaders,
  HOOK,
  memoryLog,
  pushPayload,
  randomSha,
  WEBHOOK_SECRET,
} from '../helpers/server-http';
import { connectOrSkip, temporalAddress, workflowBundle } from '../helpers/temporal';

const bin = fileURLToPath(new URL('../../bin/vaquero.mjs', import.meta.url));
const NAMESPACE = process.env.VAQUERO_TEST_NAMESPACE ?? 'vaquero-test';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'vaquero-h4-main-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Runs `vaquero <args>`; resolves with its exit code and output once it exits. */
function vaquero(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [bin, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited, stdout: () => stdout, stderr: () => stderr };
}

/** A leadership the test hands over and takes back. */
function switchableLeadership(leading: boolean): Leadership & { set(leader: boolean): void } {
  const listeners = new Set<(leader: boolean) => void>();
  return {
    isLeader: () => leading,
    onChange: (l) => (listeners.add(l), () => listeners.delete(l)),
    close: () => Promise.resolve(),
    set(leader) {
      leading = leader;
      for (const l of listeners) l(leader);
    },
  };
}

describe('vaquero server', () => {
  test('a bad config file is one clear line on stderr and exit code 2, without a stack trace', async (t) => {
    const dir = await tempDir(t);
    const cases: [string, string, RegExp][] = [
      ['broken.yaml', 'listen: [\n', /broken\.yaml is not valid YAML/],
      ['invalid.yaml', 'listen: { port: 99999 }\nsurprise: 1\n', /listen\.port: .*\n.*(surprise|api)/s],
      [
        'secret.yaml',
        'api: { tokens: [{ name: ops, token: { env: VAQUERO_H4_UNSET } }] }\n',
        /VAQUERO_H4_UNSET is unset/,
      ],
    ];
    const cli = async (args: string[]) => {
      let err = '';
      const io = { out: () => undefined, err: (text: string) => void (err += text), cwd: () => dir };
      return { code: await main(args, io), err };
    };
    for (const [name, text, expected] of cases) {
      await writeFile(path.join(dir, name), text);
      const { code, err } = await cli(['server', '--config', name]);
      assert.equal(code, 2, name);
      assert.match(err, expected);
      assert.doesNotMatch(err, /\n\s+at /, `${name}: no stack trace`);
    }
    const missing = await cli(['server', '--config', 'nope.yaml']);
    assert.equal(missing.code, 2);
    assert.match(missing.err, /cannot read .*nope\.yaml/);
    // The real command line, once: bin/vaquero.mjs sends `server` to the CLI.
    const usage = vaquero(['server']);
    assert.equal(await usage.exited, 2);
    assert.match(usage.stderr(), /usage: vaquero server --config/);
  });

  test('runs from its YAML config, logs JSON lines, and exits 0 on SIGTERM', async (t) => {
    if (!(await connectOrSkip(t))) return;
    const dir = await tempDir(t);
    const config = path.join(dir, 'server.yaml');
    await writeFile(
      config,
      [
        'listen: { host: 127.0.0.1, port: 0 }',
        `temporal: { address: '${temporalAddress()}', namespace: ${NAMESPACE} }`,
        `store: { dir: ${path.join(dir, 'store')} }`,
        'api:',
        '  tokens: [{ name: ops, token: { env: VAQUERO_H4_TOKEN } }]',
        '',
      ].join('\n'),
    );
    const run = vaquero(['server', '--config', config], { VAQUERO_H4_TOKEN: API_TOKEN });
    t.after(() => run.child.kill('SIGKILL'));
    let url: string | undefined;
    for (let i = 0; i < 1200 && !url; i++) {
      await new Promise((r) => setTimeout(r, 100));
      url = /"url":"(http:[^"]+)"/.exec(run.stdout())?.[1];
    }
    assert.ok(url, `server started: ${run.stdout()}${run.stderr()}`);
    assert.equal((await fetch(`${url}/ready`)).status, 200);
    const api = await fetch(`${url}/api/v1/rollouts`, { headers: { authorization: `Bearer ${API_TOKEN}` } });
    assert.equal(api.status, 200);
    run.child.kill('SIGTERM');
    assert.equal(await run.exited, 0, run.stderr());
    const lines = run
      .stdout()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const request = lines.find((l) => l.path === '/api/v1/rollouts');
    assert.ok(request && typeof request.reqId === 'string', 'request lines carry a request id');
    assert.ok(lines.some((l) => l.msg === 'worker stopped'));
    assert.ok(!run.stdout().includes(API_TOKEN), 'the token is never logged');
  });

  test('in-process: only the leader is ready, takes webhooks and reports leading in /metrics', async (t) => {
    const connection = await connectOrSkip(t);
    if (!connection) return;
    const dir = await tempDir(t);
    const config = parseServerConfig({
      listen: { port: 0 },
      temporal: { address: temporalAddress(), namespace: NAMESPACE, setup: false },
      store: { dir: path.join(dir, 'store') },
      sources: [{ name: HOOK, kind: 'git', repo: dir, webhook_secret: { env: 'UNUSED' } }],
      api: { tokens: [{ name: 'ops', token: { env: 'UNUSED' } }] },
    });
    const leadership = switchableLeadership(false);
    const { log } = memoryLog();
    const server = await startServer(config, {
      leadership,
      log,
      secrets: {
        webhooks: new Map([[HOOK, WEBHOOK_SECRET]]),
        apiTokens: [{ name: 'ops', token: API_TOKEN }],
      },
      workflows: { workflowBundle: await workflowBundle() },
    });
    t.after(() => server.stop());
    const gauge = async () =>
      /^vaquero_leader (\d)$/m.exec(await (await fetch(`${server.url}/metrics`)).text())?.[1];

    const ready = await fetch(`${server.url}/ready`);
    assert.equal(ready.status, 503);
    assert.deepEqual(await ready.json(), { status: 'not ready', reason: 'not the leader' });
    assert.equal(await gauge(), '0');
    // A push to a follower starts nothing: GitHub records the 503 and the operator redelivers.
    const body = JSON.stringify(pushPayload(randomSha()));
    const refused = await fetch(`${server.url}/postreceive/${HOOK}`, {
      method: 'POST',
      headers: githubHeaders('push', body),
      body,
    });
    assert.equal(refused.status, 503);

    leadership.set(true);
    assert.equal((await fetch(`${server.url}/ready`)).status, 200);
    assert.equal(await gauge(), '1');
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(
      metrics,
      /vaquero_webhook_deliveries_total\{hook="lab",event="push",outcome="not_leader"\} 1/,
    );
    assert.match(metrics, /vaquero_http_requests_total\{method="GET",route="\/ready",status="503"\} 1/);
    assert.match(metrics, /vaquero_process_resident_memory_bytes \d+/);
  });
});
