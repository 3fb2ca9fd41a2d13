// Issue 17: one gate check against a real Prometheus (Debian's package) scraping an exporter the test
// sets — what passes, what fails and how the reason reads; a secret that is missing is named, not sent;
// a gate with host variables over a wave asks its per-host queries a bounded number at a time.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { checkGate } from '../../activities/gates/check-gate';
import { createSecretResolver } from '../../activities/jobs/secrets';
import { own } from '../../schemas/common';
import type { PlannedGate } from '../../schemas/gates';
import { validateSot } from '../../sot/validate';
import { startPrometheus } from '../helpers/prometheus';

const simFixture = fileURLToPath(new URL('../fixtures/sot-sim', import.meta.url));
const ISO = /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/.source;

function gate(
  prometheus: string,
  query: string,
  must: string,
  extra: Partial<PlannedGate> = {},
): PlannedGate {
  return {
    from: 'site',
    prometheus,
    query,
    must,
    every: '1s',
    on_unreachable: 'fail',
    on_empty: 'fail',
    ...extra,
  };
}

const deps = {
  model: () => Promise.reject(new Error('no model: these gates name no host')),
  resolveSecret: createSecretResolver({}),
  timeoutMs: 2_000,
};
const check = (g: PlannedGate) => checkGate(deps, { commit: 'c', site: 's', hosts: [], gate: g });

describe('a gate check against a real Prometheus', () => {
  test('thresholds, empty results, refused queries, an unreachable Prometheus and a missing token', async (t) => {
    const prom = await startPrometheus(t);
    prom.set('vaquero_disk_errors{disk="sda"}', 0);
    prom.set('vaquero_disk_errors{disk="sdb"}', 7);
    await prom.seen('vaquero_disk_errors{disk="sdb"}', 7);

    const ok = await check(gate(prom.url, 'vaquero_disk_errors{disk="sda"}', '== 0'));
    assert.deepEqual([ok.ok, ok.value], [true, '0']);
    assert.equal((await check(gate(prom.url, 'sum(vaquero_disk_errors)', '< 10'))).ok, true);
    assert.equal((await check(gate(prom.url, 'scalar(sum(vaquero_disk_errors))', '== 7'))).ok, true);

    const bad = await check(gate(prom.url, 'vaquero_disk_errors', '== 0', { name: 'disk errors' }));
    assert.equal(bad.ok, false);
    assert.match(
      bad.reason ?? '',
      new RegExp(
        `^gate "disk errors" failed at ${ISO}: vaquero_disk_errors = 7 \\{__name__="vaquero_disk_errors", disk="sdb", instance="127\\.0\\.0\\.1:\\d+", job="test-exporter"\\}, must be == 0$`,
      ),
    );

    const empty = await check(gate(prom.url, 'vaquero_nothing_here', '== 0'));
    assert.match(
      empty.reason ?? '',
      /vaquero_nothing_here returned no sample \(on_empty: fail\), must be == 0$/,
    );
    assert.equal(
      (await check(gate(prom.url, 'vaquero_nothing_here', '== 0', { on_empty: 'pass' }))).ok,
      true,
    );

    const range = await check(gate(prom.url, 'vaquero_disk_errors[1m]', '== 0'));
    assert.match(
      range.reason ?? '',
      /the query returns a matrix: a gate needs an instant vector or a scalar$/,
    );
    const syntax = await check(gate(prom.url, 'sum(vaquero_disk_errors', '== 0'));
    assert.match(syntax.reason ?? '', /Prometheus refused the query \(bad_data: .+\)$/);

    const token = await check(gate(prom.url, 'up', '== 1', { token: { env: 'VAQUERO_PROM_TOKEN' } }));
    assert.match(
      token.reason ?? '',
      /^gate "up" cannot be evaluated at .*: secret environment variable VAQUERO_PROM_TOKEN is not set$/,
    );
    const withToken = await checkGate(
      { ...deps, resolveSecret: createSecretResolver({ VAQUERO_PROM_TOKEN: 's3cret-value' }) },
      {
        commit: 'c',
        site: 's',
        hosts: [],
        gate: gate(prom.url, 'up', '== 1', { token: { env: 'VAQUERO_PROM_TOKEN' } }),
      },
    );
    assert.equal(withToken.ok, true, 'Prometheus without auth ignores the bearer token');
    assert.doesNotMatch(JSON.stringify(withToken), /s3cret/);

    await prom.kill();
    const down = await check(gate(prom.url, 'up', '== 1'));
    assert.match(
      down.reason ?? '',
      new RegExp(
        `^gate "up" failed at ${ISO}: up: Prometheus at ${prom.url.replaceAll('.', '\\.')} cannot be reached: ECONNREFUSED$`,
      ),
    );
    const tolerated = await check(gate(prom.url, 'up', '== 1', { on_unreachable: 'pass' }));
    assert.equal(tolerated.ok, true);
    assert.match(tolerated.reason ?? '', /cannot be reached: ECONNREFUSED \(on_unreachable: pass\)$/);
  });
});

/** A proxy in front of Prometheus that holds each answer 50 ms and counts the queries in flight. */
async function countingProxy(t: TestContext, target: string) {
  const seen = { queries: 0, inFlight: 0, most: 0 };
  const server = createServer((req, res) => {
    seen.queries++;
    seen.most = Math.max(seen.most, ++seen.inFlight);
    void (async () => {
      await delay(50);
      const answer = await fetch(new URL(req.url ?? '/', target));
      res.writeHead(answer.status, { 'content-type': 'application/json' }).end(await answer.text());
      seen.inFlight--;
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, seen };
}

describe('a gate with host variables over a wave', () => {
  test('asks a bounded number of queries at once, and names the failing hosts', async (t) => {
    const prom = await startPrometheus(t);
    const model = (await validateSot(simFixture)).model;
    assert.ok(model, 'the sim fixture is a valid SoT');
    const hosts = own(model.sites, 'sim1')!.hosts.map((h) => h.name);
    assert.equal(hosts.length, 20);
    for (const host of hosts) prom.set(`vaquero_test_errors{host="${host}"}`, 0);
    await prom.seen(`vaquero_test_errors{host="${hosts[19]}"}`, 0);
    const proxy = await countingProxy(t, prom.url);
    const waveGate = gate(proxy.url, 'vaquero_test_errors{host="{{ host.name }}"}', '== 0', {
      name: 'errors',
    });
    const wave = (concurrency: number) =>
      checkGate(
        { ...deps, model: () => Promise.resolve(model), concurrency },
        { commit: 'c', site: 'sim1', hosts, gate: waveGate },
      );

    const ok = await wave(4);
    assert.deepEqual([ok.ok, ok.checked], [true, 20]);
    assert.equal(proxy.seen.queries, 20, 'one query a host');
    // At most 4 at once; more than one (a loaded machine may not always reach 4 together).
    assert.ok(proxy.seen.most <= 4 && proxy.seen.most > 1, `${proxy.seen.most} queries at once`);

    // Two hosts of the first round go bad: the check names both, and asks no host after the next round.
    prom.set(`vaquero_test_errors{host="${hosts[1]}"}`, 3);
    prom.set(`vaquero_test_errors{host="${hosts[2]}"}`, 5);
    await prom.seen(`vaquero_test_errors{host="${hosts[2]}"}`, 5);
    proxy.seen.queries = 0;
    const bad = await wave(4);
    assert.equal(bad.ok, false);
    assert.deepEqual(bad.hosts, [hosts[1], hosts[2]]);
    assert.match(
      bad.reason ?? '',
      new RegExp(
        `^gate "errors" failed at ${ISO} on ${hosts[1]} \\(failing too: ${hosts[2]}\\): vaquero_test_errors\\{host="${hosts[1]}"\\} = 3 \\{.*\\}, must be == 0$`,
      ),
    );
    assert.ok(proxy.seen.queries < 20, `the failure stopped the asking: ${proxy.seen.queries} queries`);
    assert.equal(bad.checked, proxy.seen.queries);

    // One at a time, as before: the first failure is the last query asked.
    proxy.seen.queries = 0;
    proxy.seen.most = 0;
    const one = await wave(1);
    assert.deepEqual([one.hosts, proxy.seen.queries, proxy.seen.most], [[hosts[1]], 2, 1]);
    assert.equal('judged' in one || 'why' in one, false, 'the history gets the check, nothing more');

    // A query without host variables judges the wave: asked once, no host named.
    proxy.seen.queries = 0;
    const sum = await checkGate(
      { ...deps, model: () => Promise.resolve(model) },
      { commit: 'c', site: 'sim1', hosts, gate: gate(proxy.url, 'sum(vaquero_test_errors)', '== 0') },
    );
    assert.match(sum.reason ?? '', new RegExp(`^gate "sum\\(vaquero_test_errors\\)" failed at ${ISO}: sum`));
    assert.deepEqual([sum.hosts, proxy.seen.queries], [undefined, 1]);
  });
});
