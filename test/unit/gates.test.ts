// Issue 17, item 3: soak and metric gates in the SoT — PromQL checked for balance and template
// variables, thresholds and durations by the schema — and `vaquero plan` showing them per wave.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parseMust, satisfies } from '../../schemas/gates';
import { sampleValue } from '../../activities/gates/prometheus';
import { formatDiagnostic } from '../../sot/diagnostics';
import { promqlProblem } from '../../sot/check-gates';
import { planChanges } from '../../sot/plan';
import { planText } from '../../sot/plan-text';
import { validateSot } from '../../sot/validate';
import { materialize, removeSot } from '../helpers/sot';

async function withGates(dir: string, site: string, core: string): Promise<void> {
  const sitePath = path.join(dir, 'sites/lab1/site.yaml');
  await writeFile(sitePath, (await readFile(sitePath, 'utf8')).replace('policy:\n', `policy:\n${site}`));
  await writeFile(path.join(dir, 'workflows/core.yaml'), core);
}

const CORE = (gates: string, canary = '{ size: 1, soak: 30m }') =>
  `id: core\nboots: [flatcar-core]\nrollout:\n  max_concurrent: 1\n  min_standing: 2\n  canary: ${canary}\n  gates:\n${gates}`;

async function problems(site: string, core: string): Promise<string[]> {
  const dir = await materialize();
  try {
    await withGates(dir, site, core);
    return (await validateSot(dir)).diagnostics.map(formatDiagnostic);
  } finally {
    await removeSot(dir);
  }
}

describe('metric gates', () => {
  test('PromQL: brackets balanced, strings and template expressions closed', () => {
    assert.equal(
      promqlProblem('rate(node_network_receive_errs_total{instance="{{ host.ipv4 }}:9100"}[5m])'),
      undefined,
    );
    assert.equal(promqlProblem('sum(up{job="node"}) by (instance) # comment ('), undefined);
    assert.equal(promqlProblem('up{a="}"}'), undefined, 'a brace inside a string is no bracket');
    assert.equal(promqlProblem('rate(x[5m]'), '"(" opened at column 5 is not closed');
    assert.equal(promqlProblem('rate(x[5m)]'), '")" at column 10 does not close the "[" opened at column 7');
    assert.equal(promqlProblem('up)'), '")" at column 3 closes nothing');
    assert.equal(promqlProblem('up{job="node}'), 'string opened with " at column 8 is not closed');
    assert.equal(
      promqlProblem('up{instance="{{ host.ipv4 }"}'),
      'template expression at column 14 is not closed with "}}"',
    );
    assert.equal(promqlProblem('  '), 'the query is empty');
  });

  test('thresholds: a comparison with a number; NaN and infinities as Prometheus writes them', () => {
    assert.deepEqual(parseMust('< 0.05'), { op: '<', threshold: 0.05 });
    assert.deepEqual(parseMust('>=1e3'), { op: '>=', threshold: 1000 });
    assert.equal(parseMust('= 0'), undefined);
    assert.equal(parseMust('< five'), undefined);
    assert.equal(satisfies(0, '== 0'), true);
    assert.equal(satisfies(0.06, '< 0.05'), false);
    assert.equal(satisfies(sampleValue('NaN'), '!= 1'), false, 'NaN satisfies nothing');
    assert.equal(satisfies(sampleValue('+Inf'), '> 1e308'), true);
    assert.equal(satisfies(sampleValue('-Inf'), '< 0'), true);
  });

  test('validation reports the query, the threshold, the duration and an undefined variable at their lines', async () => {
    const site = [
      '  soak: 10m',
      '  gates:',
      '    - { prometheus: "http://prom:9090", query: "rate(x[5m]", must: "< 1" }',
      '    - { prometheus: "http://prom:9090", query: "up", must: "= 1", every: 500ms }',
      '',
    ].join('\n');
    const core = CORE(
      [
        '    - prometheus: http://prom:9090',
        '      query: up{instance="{{ host.nope }}"}',
        '      must: "== 1"',
        '      for: ten',
        '    - { prometheus: "ftp://prom", query: "up", must: "== 1", on_empty: maybe }',
        '',
      ].join('\n'),
    );
    const found = await problems(site, core);
    const text = found.join('\n');
    assert.match(text, /site\.yaml:\d+: policy\.gates\[1\]\.must: must be a comparison with a number/);
    assert.match(text, /site\.yaml:\d+: policy\.gates\[1\]\.every: must be a duration/);
    assert.match(text, /core\.yaml:\d+: rollout\.gates\[0\]\.for: must be a duration/);
    assert.match(
      text,
      /core\.yaml:\d+: rollout\.gates\[1\]\.prometheus: must be the http\(s\) URL of a Prometheus/,
    );
    assert.match(text, /core\.yaml:\d+: rollout\.gates\[1\]\.on_empty/);
    // Schema problems stop the model: the PromQL and template checks run on a valid one (below).
    const valid = await problems(
      '  soak: 10m\n  gates:\n    - { prometheus: "http://prom:9090", query: "rate(x[5m]", must: "< 1" }\n',
      CORE(
        '    - { prometheus: "http://prom:9090", query: "up{instance=\\"{{ host.nope }}\\"}", must: "== 1" }\n',
      ),
    );
    assert.deepEqual(
      valid.map((l) => l.replace(/^.*\/(sites|workflows)\//, '$1/')),
      [
        'sites/lab1/site.yaml:26: policy.gates[0].query: PromQL: "(" opened at column 5 is not closed',
        'workflows/core.yaml:8: rollout.gates[0].query: rendering for host lab1/core-01: undefined value in {{ host.nope }} (and 2 more hosts)',
      ],
    );
  });

  test('`vaquero plan` shows the soak and the gates per wave; plans without them are unchanged', async () => {
    const dir = await materialize();
    try {
      const before = (await validateSot(dir)).model!;
      await withGates(
        dir,
        '  gates:\n    - { name: no reboots, prometheus: "http://prom:9090", query: "changes(node_boot_time_seconds[10m])", must: "== 0", for: 10m }\n',
        CORE(
          '    - { prometheus: "http://prom:9090", query: "node_load1{instance=\\"{{ host.ipv4 }}:9100\\"}", must: "< 4", every: 15s }\n',
        ),
      );
      const after = (await validateSot(dir)).model;
      assert.ok(after, 'valid');
      const plan = planChanges(undefined, after, '(nothing applied)', 'abc');
      const site = plan.sites[0]!;
      const canary = site.waves[0]!;
      assert.equal(canary.soak, '30m');
      assert.deepEqual(
        canary.gates?.map((g) => g.from),
        ['site', 'core'],
      );
      assert.ok(site.waves.slice(1).every((w) => w.soak === undefined && (w.gates?.length ?? 0) >= 1));
      const text = planText(plan);
      assert.match(text, /after wave 1 canary: soak 30m, 2 gate\(s\), each must hold:/);
      assert.match(
        text,
        /\[site\] no reboots: changes\(node_boot_time_seconds\[10m\]\) == 0 for 10m every 30s \(http:\/\/prom:9090\)/,
      );
      assert.match(
        text,
        /\[core\] node_load1\{instance="\{\{ host\.ipv4 \}\}:9100"\} < 4 \(http:\/\/prom:9090\)/,
      );
      const plain = planChanges(undefined, before, '(nothing applied)', 'abc');
      assert.ok(
        plain.sites[0]!.waves.every((w) => !('soak' in w) && !('gates' in w)),
        'older shape kept',
      );
      assert.doesNotMatch(planText(plain), /after wave/);
    } finally {
      await removeSot(dir);
    }
  });
});
