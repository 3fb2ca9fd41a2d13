// `vaquero validate` on the small valid SoT, the example SoT, and one broken fixture per check.
// A broken fixture is test/fixtures/broken/<case>/: files that replace or add to sot-min, an optional
// overlay.json ({ "delete": [...], "todo": "known bug" }) and expected.txt with the exact diagnostics.
// Adding a case needs no code here.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  brokenCases,
  brokenDir,
  caseTodo,
  exampleSot,
  expectedLines,
  materialize,
  removeSot,
  repoRoot,
  runCli,
  sotMin,
  type CliResult,
} from '../helpers/sot';

function summary(dir: string, problems: number): string {
  return `${dir}: ${problems} problem${problems === 1 ? '' : 's'}`;
}

/** Asserts a failed validation: exit 1, nothing on stdout, exactly these diagnostics and the summary. */
function assertProblems(r: CliResult, dir: string, expected: string[]): void {
  assert.equal(r.out, '', 'nothing on stdout');
  assert.doesNotMatch(r.err, /^ {4}at /m, 'no stack trace');
  assert.ok(r.err.endsWith('\n'), 'stderr ends with a newline');
  const lines = r.err.slice(0, -1).split('\n');
  assert.deepEqual(lines.slice(0, -1), expected);
  assert.equal(lines.at(-1), summary(dir, expected.length));
  assert.equal(r.code, 1);
}

const cases = await brokenCases();
const todos = new Map(await Promise.all(cases.map(async (name) => [name, await caseTodo(name)] as const)));

describe('vaquero validate: valid sources of truth', () => {
  test('sot-min is valid', async () => {
    const r = await runCli(['validate', sotMin]);
    assert.equal(r.err, '');
    assert.equal(r.out, `${sotMin}: valid (1 site, 5 hosts, 2 host groups)\n`);
    assert.equal(r.code, 0);
  });

  test('examples/sot is valid', async () => {
    const r = await runCli(['validate', exampleSot]);
    assert.equal(r.err, '');
    assert.equal(r.out, `${exampleSot}: valid (2 sites, 20 hosts, 3 host groups)\n`);
    assert.equal(r.code, 0);
  });

  test('a relative directory is resolved against the working directory and printed as given', async () => {
    const r = await runCli(['validate', 'examples/sot'], repoRoot);
    assert.equal(r.out, 'examples/sot: valid (2 sites, 20 hosts, 3 host groups)\n');
    assert.equal(r.code, 0);
  });

  test('--json on a valid SoT', async () => {
    const r = await runCli(['validate', sotMin, '--json']);
    assert.equal(r.err, '');
    assert.deepEqual(JSON.parse(r.out), { valid: true, problems: [] });
    assert.equal(r.code, 0);
  });

  test('an empty overlay reproduces sot-min', async (t) => {
    const dir = await materialize();
    t.after(() => removeSot(dir));
    const r = await runCli(['validate', dir]);
    assert.equal(r.code, 0, r.err);
  });
});

describe('vaquero validate: broken fixtures, one problem each', () => {
  test('there is a fixture per check (at least 30)', () => {
    assert.ok(cases.length >= 30, `only ${cases.length} broken fixtures`);
  });

  for (const name of cases) {
    test(name, { todo: todos.get(name) }, async (t) => {
      const expected = await expectedLines(name);
      assert.ok(expected.length > 0, `${name}/expected.txt is empty`);
      const dir = await materialize(path.join(brokenDir, name));
      t.after(() => removeSot(dir));
      assertProblems(await runCli(['validate', dir]), dir, expected);
    });
  }
});

describe('vaquero validate: reporting', () => {
  test('--json gives every problem with file, line, path, message and check', async (t) => {
    const dir = await materialize(path.join(brokenDir, 'duplicate-mac'));
    t.after(() => removeSot(dir));
    const r = await runCli(['validate', dir, '--json']);
    assert.equal(r.err, '');
    assert.deepEqual(JSON.parse(r.out), {
      valid: false,
      problems: [
        {
          file: 'sites/lab1/hosts/spare.yaml',
          line: 4,
          path: 'interfaces[0].mac',
          message: 'MAC 52:54:00:10:00:02 is also used by lab1/core-02',
          check: 'duplicate-mac',
        },
      ],
    });
    assert.equal(r.code, 1);
  });

  test('--json names the check of a schema error and of a template error', async (t) => {
    const dir = await materialize(
      path.join(brokenDir, 'bad-mac'),
      path.join(brokenDir, 'undefined-var-in-template'),
    );
    t.after(() => removeSot(dir));
    const r = await runCli(['validate', '--json', dir]);
    const parsed = JSON.parse(r.out) as { valid: boolean; problems: { check: string; file: string }[] };
    assert.equal(parsed.valid, false);
    assert.deepEqual(
      parsed.problems.map((p) => [p.file, p.check]),
      [
        ['assets/cloud-config/storage.yaml.j2', 'template'],
        ['sites/lab1/hosts/spare.yaml', 'schema'],
      ],
    );
    assert.equal(r.code, 1);
  });

  test('every problem is reported at once, sorted by file and line', async (t) => {
    const overlays = ['unknown-os', 'ip-is-gateway', 'gateway-outside-subnet'];
    const dir = await materialize(...overlays.map((o) => path.join(brokenDir, o)));
    t.after(() => removeSot(dir));
    assertProblems(await runCli(['validate', dir]), dir, [
      'boot/spare.yaml:2: os: unknown os "flatcar-stable" (no os/*.yaml has this id)',
      'sites/lab1/hosts/spare.yaml:6: interfaces[0].ipv4: 10.10.0.1 is the gateway of subnet lab1-prov',
      'sites/lab2/site.yaml:9: subnets[0].gateway: gateway 10.20.1.1 is outside 10.20.0.0/24',
    ]);
  });

  test('problems in several documents of one file are all reported, each at its line', async (t) => {
    const dir = await materialize();
    t.after(() => removeSot(dir));
    const hosts = [
      'name: spare-01',
      'group: storage',
      'interfaces:',
      '  - { mac: "52:54:00:10:09", subnet: lab1-prov, ipv4: 10.10.0.91 }',
      '---',
      'name: spare-02',
      'group: storage',
      'interfaces:',
      '  - mac: "52:54:00:10:09:02"',
      '    subnet: lab1-prov',
      '    ipv4: 10.10.0.392',
      '',
    ];
    await writeFile(path.join(dir, 'sites/lab1/hosts/spare.yaml'), hosts.join('\n'));
    assertProblems(await runCli(['validate', dir]), dir, [
      'sites/lab1/hosts/spare.yaml:4: interfaces[0].mac: must be a MAC address like 52:54:00:12:34:56',
      'sites/lab1/hosts/spare.yaml:11: interfaces[0].ipv4: must be an IPv4 address like 10.0.0.1',
    ]);
  });
});
