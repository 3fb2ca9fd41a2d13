// Two `vaquero server` processes sharing a real etcd (HA) and the Temporal dev server: one is ready,
// kill -9 of it makes the other ready within 3 s, /ready is right throughout, pushes posted during
// the failover by a sender that retries on 503 all start their apply/<sha>, and a leader without
// etcd stops being ready.
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Client } from '@temporalio/client';
import { applyWorkflowId } from '../../schemas/rollout';
import { freePort, startEtcd } from '../helpers/etcd';
import {
  githubHeaders,
  HOOK,
  pushPayload,
  randomSha,
  signature,
  WEBHOOK_SECRET,
} from '../helpers/server-http';
import { connectOrSkip, temporalAddress } from '../helpers/temporal';

const bin = fileURLToPath(new URL('../../bin/vaquero.mjs', import.meta.url));
const NAMESPACE = process.env.VAQUERO_TEST_NAMESPACE ?? 'vaquero-test';
const FAILOVER_LIMIT_MS = 3_000;
const TTL_S = Number(process.env.VAQUERO_HA_TTL ?? 1);

interface Server {
  name: string;
  url: string;
  child: ChildProcess;
  output(): string;
}

function startServerProcess(name: string, config: string, env: Record<string, string>): Server {
  const child = spawn(process.execPath, [bin, 'server', '--config', config], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (d: Buffer) => (output = (output + d.toString()).slice(-20_000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return { name, url: '', child, output: () => output };
}

/** GET /ready: its status, or 0 when nothing answers within 1 s. */
async function ready(url: string): Promise<number> {
  try {
    const res = await fetch(`${url}/ready`, { signal: AbortSignal.timeout(1_000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

/** A GitHub-like sender in front of a load balancer: tries each server until one takes the push. */
async function deliver(urls: string[], sha: string): Promise<{ status: number; by: string; tries: number }> {
  const body = JSON.stringify(pushPayload(sha));
  for (let tries = 1; tries <= 100; tries++) {
    const url = urls[tries % urls.length]!;
    try {
      const res = await fetch(`${url}/postreceive/${HOOK}`, {
        method: 'POST',
        headers: githubHeaders('push', body, signature(body, WEBHOOK_SECRET)),
        body,
        signal: AbortSignal.timeout(3_000),
      });
      await res.arrayBuffer();
      if (res.status === 202 || res.status === 200) return { status: res.status, by: url, tries };
      assert.equal(res.status, 503, `only "not the leader" is retried, got ${res.status}`);
    } catch (err) {
      if (err instanceof assert.AssertionError) throw err;
      // Connection refused (a killed server) or a timeout: the next server.
    }
    await sleep(100);
  }
  throw new Error(`push ${sha} was never accepted`);
}

async function waitFor<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await sleep(100);
  }
  throw new Error(`${what}: not within ${ms} ms`);
}

describe('HA: two servers, one etcd', () => {
  test(
    'failover after kill -9 of the leader, with no push lost; no etcd, no leader',
    { timeout: 300_000 },
    async (t) => {
      const connection = await connectOrSkip(t);
      if (!connection) return;
      const client = new Client({ connection, namespace: NAMESPACE });
      const etcd = await startEtcd(t);
      const dir = await mkdtemp(path.join(tmpdir(), 'vaquero-ha-'));
      t.after(() => rm(dir, { recursive: true, force: true }));
      execFileSync('git', ['init', '-q', '-b', 'main', path.join(dir, 'sot')]);

      const servers: Server[] = [];
      t.after(() => {
        for (const s of servers) s.child.kill('SIGKILL');
      });
      const env = { VAQ_HA_HOOK_SECRET: WEBHOOK_SECRET, VAQ_HA_API_TOKEN: 'vaq_ha_api_token' };
      for (const name of ['a', 'b']) {
        const port = await freePort();
        const config = {
          listen: { host: '127.0.0.1', port },
          temporal: { address: temporalAddress(), namespace: NAMESPACE, setup: false },
          store: { dir: path.join(dir, `store-${name}`) },
          sources: [
            {
              name: HOOK,
              kind: 'git',
              repo: path.join(dir, 'sot'),
              webhook_secret: { env: 'VAQ_HA_HOOK_SECRET' },
            },
          ],
          api: { tokens: [{ name: 'ops', token: { env: 'VAQ_HA_API_TOKEN' } }] },
          // The test etcd's short heartbeat allows a 1 s lease (etcd's default settings: 2 s at least).
          ha: { etcd: { endpoints: [etcd.endpoint], prefix: '/ha-test/', lease_ttl_s: TTL_S } },
        };
        const file = path.join(dir, `${name}.json`);
        await writeFile(file, JSON.stringify(config));
        const server = startServerProcess(name, file, env);
        server.url = `http://127.0.0.1:${port}`;
        servers.push(server);
      }
      const [a, b] = servers as [Server, Server];
      const urls = [a.url, b.url];

      // Both start (bundling workflows takes a while on a busy machine), and one leads.
      const first = await waitFor('one server ready', 120_000, async () => {
        for (const s of servers)
          if (s.child.exitCode !== null) throw new Error(`${s.name} exited:\n${s.output()}`);
        const [ra, rb] = [await ready(a.url), await ready(b.url)];
        if (ra === 0 || rb === 0) return undefined;
        if (ra === 200 && rb === 200) throw new Error('both servers are ready');
        return ra === 200 ? a : rb === 200 ? b : undefined;
      });
      const other = first === a ? b : a;
      assert.equal(await ready(other.url), 503, 'the other answers 503');

      // /ready of both every 100 ms, from here to the end.
      const samples: { at: number; a: number; b: number }[] = [];
      let polling = true;
      // A failed assertion below must not leave the poller running: the test file would never exit.
      t.after(() => {
        polling = false;
      });
      const poller = (async () => {
        while (polling) {
          const [ra, rb] = await Promise.all([ready(a.url), ready(b.url)]);
          samples.push({ at: Date.now(), a: ra, b: rb });
          await sleep(100);
        }
      })();

      // Pushes keep coming before, during and after the failover.
      const shas = Array.from({ length: 16 }, () => randomSha());
      t.after(async () => {
        for (const sha of shas)
          await client.workflow
            .getHandle(applyWorkflowId(sha))
            .terminate('ha-failover test done')
            .catch(() => undefined);
      });
      let killedAt = 0;
      const sender = (async () => {
        const results = [];
        for (const [i, sha] of shas.entries()) {
          if (i === 5) {
            killedAt = Date.now();
            first.child.kill('SIGKILL');
          }
          results.push(await deliver(urls, sha));
          await sleep(150);
        }
        return results;
      })();

      const results = await sender;
      const failoverMs = await waitFor('the other server ready', 10_000, () => {
        const took = samples.find((s) => s.at > killedAt && (other === a ? s.a : s.b) === 200);
        return Promise.resolve(took ? took.at - killedAt : undefined);
      });
      console.log(
        `failover: ${other.name} ready ${failoverMs} ms after kill -9 of ${first.name} (lease TTL ${TTL_S} s, /ready polled every 100 ms)`,
      );
      console.log(`pushes: ${results.map((r) => `${r.by === a.url ? 'a' : 'b'}:${r.tries}`).join(' ')}`);
      assert.ok(failoverMs < FAILOVER_LIMIT_MS, `ready within 3 s (${failoverMs} ms)`);

      // Every push started its apply/<sha> exactly once, whichever server took it.
      for (const sha of shas) {
        const description = await client.workflow.getHandle(applyWorkflowId(sha)).describe();
        assert.equal(description.type, 'applyCommitWorkflow');
      }

      // etcd gone: the leader stops being ready (the lease can no longer be confirmed).
      await sleep(500);
      assert.equal(await ready(other.url), 200);
      const stoppedAt = Date.now();
      await etcd.kill();
      const notReadyMs = await waitFor('leader not ready without etcd', 5_000, async () =>
        (await ready(other.url)) === 503 ? Date.now() - stoppedAt : undefined,
      );
      console.log(`etcd killed: ${other.name} not ready after ${notReadyMs} ms`);
      polling = false;
      await poller;

      // /ready was right at every sample: never two leaders; one leader except across the failover.
      assert.ok(samples.length > 20, `${samples.length} samples`);
      for (const s of samples) assert.ok(!(s.a === 200 && s.b === 200), `two ready servers at ${s.at}`);
      const firstStatus = (s: { a: number; b: number }) => (first === a ? s.a : s.b);
      const otherStatus = (s: { a: number; b: number }) => (first === a ? s.b : s.a);
      // 0 is a probe that timed out on a busy machine: no answer, not a wrong one.
      for (const s of samples.filter((x) => x.at < killedAt)) {
        assert.ok(
          [200, 0].includes(firstStatus(s)),
          `the leader is ready until it is killed (${firstStatus(s)})`,
        );
        assert.ok(
          [503, 0].includes(otherStatus(s)),
          `the other is not ready while the leader lives (${otherStatus(s)})`,
        );
      }
      const answered = samples.filter((x) => x.at < killedAt && firstStatus(x) === 200).length;
      assert.ok(answered > 0, 'the leader answered 200 before it was killed');
      for (const s of samples.filter((x) => x.at > killedAt + failoverMs && x.at < stoppedAt))
        assert.ok([200, 0].includes(otherStatus(s)), `the new leader stays ready (${otherStatus(s)})`);
    },
  );
});
