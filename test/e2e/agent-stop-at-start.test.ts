// The real `vaquero agent` process told to stop while it waits for the site's first arms (the
// server's long poll does not answer): it stops at once, cleanly, with exit code 0 — the wait for
// the arms holds back only its Temporal worker, never its signal handling.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { Hono } from 'hono';
import { FileModelStore } from '../../activities/store/file-store';
import { listen } from '../../server/http/listen';
import { validateSot } from '../../sot/validate';
import { AGENT_TOKENS, agentApp } from '../helpers/agent-api';
import { exampleSot, repoRoot } from '../helpers/sot';

test(
  'an agent told to stop while the site arms are not read yet exits 0 at once',
  { timeout: 60_000 },
  async (t) => {
    const work = await mkdtemp(path.join(tmpdir(), 'vq-agent-stop-'));
    t.after(() => rm(work, { recursive: true, force: true }));
    const { model } = await validateSot(exampleSot);
    assert.ok(model);
    const store = new FileModelStore(path.join(work, 'store'));
    await store.putRevision('c1', model);
    await store.setApplied('c1');
    const api = agentApp(store);
    // The model and heartbeats answer; the arms watch hangs until its client goes away.
    let armsAsked = 0;
    const app = new Hono();
    app.get('/agent/v1/arms', async (c) => {
      armsAsked++;
      await new Promise<void>((resolve) => c.req.raw.signal.addEventListener('abort', () => resolve()));
      return c.body(null, 503);
    });
    app.all('*', (c) => api.app.fetch(c.req.raw));
    const server = await listen(app, { listen: { host: '127.0.0.1', port: 0 } });
    t.after(() => server.close());
    await writeFile(path.join(work, 'token'), `${AGENT_TOKENS.fra1}\n`);
    const args = ['agent', '--site', 'fra1', '--state-dir', path.join(work, 'state')];
    args.push('--server', `http://127.0.0.1:${server.port}`, '--insecure-http');
    args.push('--token-file', path.join(work, 'token'), '--temporal-address', '127.0.0.1:1');
    args.push('--no-dhcp', '--no-tftp', '--http-host', '127.0.0.1', '--http-port', '0');

    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const child = spawn(process.execPath, ['bin/vaquero.mjs', ...args], {
        cwd: repoRoot,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      t.after(() => child.kill('SIGKILL'));
      let log = '';
      const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
        child.once('exit', (code, sig) => resolve({ code, signal: sig })),
      );
      await new Promise<void>((resolve, reject) => {
        child.stderr.on('data', (d: Buffer) => {
          log += d.toString();
          if (/"msg":"HTTP on 127\.0\.0\.1:\d+"/.test(log) && armsAsked > 0) resolve();
        });
        void exited.then(() => reject(new Error(`agent exited before it served: ${log}`)));
      });
      const asked = Date.now();
      child.kill(signal);
      const { code, signal: killedBy } = await exited;
      const took = Date.now() - asked;
      t.diagnostic(`${signal} during the wait for the arms: exit ${code} after ${took} ms`);
      assert.equal(killedBy, null, `killed by ${signal} instead of stopping:\n${log}`);
      assert.equal(code, 0, log);
      // The wait for the arms lasts up to 5 s; stopping must not sit it out.
      assert.ok(took < 3_000, `stopped after ${took} ms`);
      assert.doesNotMatch(log, /"msg":"agent started"/);
    }
  },
);
