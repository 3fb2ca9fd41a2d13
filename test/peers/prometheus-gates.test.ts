// Issue 17: one gate check against a real Prometheus (Debian's package) scraping an exporter the test
// sets — what passes, what fails and how the reason reads; a secret that is missing is named, not sent.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkGate } from '../../activities/gates/check-gate';
import { createSecretResolver } from '../../activities/jobs/secrets';
import type { PlannedGate } from '../../schemas/gates';
import { startPrometheus } from '../helpers/prometheus';

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
