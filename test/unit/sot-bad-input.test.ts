// `vaquero validate` on hostile or broken input: each failure is a clear one-line message, never a stack
// trace, a hang or an out-of-memory crash; exit 1 for a bad source of truth, 2 for a usage error.
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { chmod, cp, mkdir, mkdtemp, rename, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { brokenDir, materialize, removeSot, repoRoot, runCli, sotMin, type CliResult } from '../helpers/sot';

function assertNoStackTrace(r: CliResult): void {
  assert.doesNotMatch(r.err, /^ {4}at /m, `stack trace on stderr:\n${r.err}`);
  assert.doesNotMatch(r.out, /^ {4}at /m, `stack trace on stdout:\n${r.out}`);
}

/** Asserts exit 1 with exactly these diagnostics (one line each) and the summary line. */
function assertProblems(r: CliResult, dir: string, expected: string[]): void {
  assertNoStackTrace(r);
  const n = expected.length;
  assert.equal(r.err, [...expected, `${dir}: ${n} problem${n === 1 ? '' : 's'}`, ''].join('\n'));
  assert.equal(r.out, '');
  assert.equal(r.code, 1);
}

/** A copy of sot-min in a temporary directory, removed when the test ends. */
async function sot(t: TestContext, ...overlays: string[]): Promise<string> {
  const dir = await materialize(...overlays.map((o) => path.join(brokenDir, o)));
  t.after(() => removeSot(dir));
  return dir;
}

function hasSetpriv(): boolean {
  try {
    execFileSync('setpriv', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Runs bin/vaquero.mjs as user nobody (root reads any file, whatever its mode). */
function runAsNobody(args: string[]): Promise<CliResult> {
  const argv = ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, 'bin/vaquero.mjs'];
  return new Promise((resolve) => {
    execFile('setpriv', [...argv, ...args], { cwd: repoRoot, timeout: 60_000 }, (err, out, errText) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, out, err: errText });
    });
  });
}

describe('vaquero validate: unreadable and malformed files', () => {
  test('an unreadable file', async (t) => {
    const isRoot = process.getuid?.() === 0;
    if (isRoot && !hasSetpriv()) {
      t.skip('running as root, which reads any file, and setpriv is missing to drop to nobody');
      return;
    }
    // Not under the default tmpdir's 0700 directories: user nobody must reach the SoT.
    const parent = await mkdtemp(path.join('/tmp', 'vaquero-unreadable-'));
    t.after(() => removeSot(parent));
    await chmod(parent, 0o755);
    const dir = path.join(parent, 'sot');
    await cp(sotMin, dir, { recursive: true });
    execFileSync('chmod', ['-R', 'u=rwX,go=rX', dir]);
    await writeFile(path.join(dir, 'os/secret.yaml'), 'id: secret\nkernel: secret/vmlinuz\n');
    await chmod(path.join(dir, 'os/secret.yaml'), 0o000);
    const r = isRoot ? await runAsNobody(['validate', dir]) : await runCli(['validate', dir]);
    assertProblems(r, dir, ['os/secret.yaml:1: (file): cannot be read: permission denied']);
  });

  test('a YAML syntax error', async (t) => {
    const dir = await sot(t, 'yaml-syntax-error');
    assertProblems(await runCli(['validate', dir]), dir, [
      'sites/lab1/hosts/spare.yaml:6: (document): YAML: Sequence item without - indicator',
    ]);
  });

  test('a binary file named hosts.yaml', async (t) => {
    const dir = await sot(t);
    const bytes = Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0x00, 0x00, 0x00, 0xff, 0xfe]);
    await writeFile(path.join(dir, 'sites/lab1/hosts/hosts.yaml'), bytes);
    assertProblems(await runCli(['validate', dir]), dir, [
      'sites/lab1/hosts/hosts.yaml:1: (file): binary file (contains NUL bytes); expected UTF-8 text',
    ]);
  });

  test('a file that is not UTF-8', async (t) => {
    const dir = await sot(t);
    await writeFile(path.join(dir, 'os/latin1.yaml'), Buffer.from('id: caf\xe9\n', 'latin1'));
    assertProblems(await runCli(['validate', dir]), dir, [
      'os/latin1.yaml:1: (file): binary file (not valid UTF-8); expected UTF-8 text',
    ]);
  });

  test('an unusable hosts file does not cascade into rollout errors for its site', async (t) => {
    const dir = await sot(t);
    await writeFile(path.join(dir, 'sites/lab1/hosts/core.yaml'), Buffer.from([0, 1, 2, 3]));
    assertProblems(await runCli(['validate', dir]), dir, [
      'sites/lab1/hosts/core.yaml:1: (file): binary file (contains NUL bytes); expected UTF-8 text',
    ]);
  });

  test('an unusable os file does not cascade into unknown-os errors', async (t) => {
    const dir = await sot(t);
    await writeFile(path.join(dir, 'os/flatcar.yaml'), Buffer.from([0, 1, 2, 3]));
    assertProblems(await runCli(['validate', dir]), dir, [
      'os/flatcar.yaml:1: (file): binary file (contains NUL bytes); expected UTF-8 text',
    ]);
  });

  test('an unusable site file does not cascade into errors for its hosts', async (t) => {
    const dir = await sot(t);
    await truncate(path.join(dir, 'sites/lab1/site.yaml'), 9 * 1024 * 1024);
    assertProblems(await runCli(['validate', dir]), dir, [
      'sites/lab1/site.yaml:1: (file): file too large (9.0 MiB; the limit is 8 MiB)',
    ]);
  });

  test('a 50 MB file is refused without reading it', async (t) => {
    const dir = await sot(t);
    const big = path.join(dir, 'sites/lab1/hosts/huge.yaml');
    await writeFile(big, '');
    await truncate(big, 50 * 1024 * 1024); // sparse: no disk space used, removed with the SoT
    const started = Date.now();
    const r = await runCli(['validate', dir]);
    assertProblems(r, dir, [
      'sites/lab1/hosts/huge.yaml:1: (file): file too large (50.0 MiB; the limit is 8 MiB)',
    ]);
    assert.ok(Date.now() - started < 10_000, 'validation of a SoT with a huge file took over 10 s');
  });

  test('a billion-laughs alias bomb fails quickly', async (t) => {
    const dir = await sot(t);
    // 9 levels of 9 aliases over 9 strings: 9^10 (3.5 billion) strings when expanded.
    const lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]'];
    for (let i = 1; i <= 9; i++) {
      const aliases = Array<string>(9).fill(`*a${i - 1}`);
      lines.push(`a${i}: &a${i} [${aliases.join(', ')}]`);
    }
    await writeFile(path.join(dir, 'sites/lab1/hosts/bomb.yaml'), `${lines.join('\n')}\n`);
    const started = Date.now();
    const r = await runCli(['validate', dir]);
    assert.ok(Date.now() - started < 10_000, 'the alias bomb took over 10 s');
    assertProblems(r, dir, [
      'sites/lab1/hosts/bomb.yaml:1: (document): YAML: Excessive alias count indicates a resource exhaustion attack',
    ]);
  });
});

describe('vaquero validate: symlinks', () => {
  test('a symlink loop (a -> b, b -> a)', async (t) => {
    const dir = await sot(t);
    await symlink('b.yaml', path.join(dir, 'os/a.yaml'));
    await symlink('a.yaml', path.join(dir, 'os/b.yaml'));
    assertProblems(await runCli(['validate', dir]), dir, [
      'os/a.yaml:1: (file): symlink loop',
      'os/b.yaml:1: (file): symlink loop',
    ]);
  });

  test('a directory symlink to its parent', async (t) => {
    const dir = await sot(t);
    await symlink('..', path.join(dir, 'sites/lab1/hosts/up'));
    assertProblems(await runCli(['validate', dir]), dir, [
      'sites/lab1/hosts/up:1: (file): symlink loop (to a directory that contains it)',
    ]);
  });

  test('a symlink loop reached by two paths is reported on each', async (t) => {
    const dir = await sot(t);
    await symlink('..', path.join(dir, 'assets/snippets/up'));
    await symlink('snippets', path.join(dir, 'assets/keys'));
    assertProblems(await runCli(['validate', dir]), dir, [
      'assets/keys/up:1: (file): symlink loop (to a directory that contains it)',
      'assets/snippets/up:1: (file): symlink loop (to a directory that contains it)',
    ]);
  });

  test('a dangling symlink', async (t) => {
    const dir = await sot(t);
    await symlink('debian.yaml', path.join(dir, 'os/stable.yaml'));
    assertProblems(await runCli(['validate', dir]), dir, [
      'os/stable.yaml:1: (file): dangling symlink (its target does not exist)',
    ]);
  });

  test('a symlink pointing outside the SoT', async (t) => {
    const dir = await sot(t);
    const outside = await mkdtemp(path.join(tmpdir(), 'vaquero-outside-'));
    t.after(() => removeSot(outside));
    await writeFile(path.join(outside, 'debian.yaml'), 'id: debian\nkernel: debian/vmlinuz\n');
    await symlink(path.join(outside, 'debian.yaml'), path.join(dir, 'os/debian.yaml'));
    assertProblems(await runCli(['validate', dir]), dir, [
      'os/debian.yaml:1: (file): symlink points outside the source of truth',
    ]);
  });

  test('a symlink inside the SoT is followed', async (t) => {
    const dir = await sot(t);
    await mkdir(path.join(dir, 'shared'));
    await rename(path.join(dir, 'os/ubuntu.yaml'), path.join(dir, 'shared/ubuntu.yaml'));
    await symlink('../shared/ubuntu.yaml', path.join(dir, 'os/ubuntu.yaml'));
    const r = await runCli(['validate', dir]);
    assert.equal(r.err, '');
    assert.equal(r.code, 0);
  });

  test('a directory reached through a symlink and by its own path is not a loop', async (t) => {
    const dir = await sot(t);
    await symlink('snippets', path.join(dir, 'assets/keys'));
    const r = await runCli(['validate', dir]);
    assert.equal(r.err, '');
    assert.equal(r.code, 0);
  });

  test('symlinks outside sites/, os/, boot/, workflows/ and assets/ are ignored like the files there', async (t) => {
    const dir = await sot(t);
    await symlink('nowhere.md', path.join(dir, 'README.md'));
    await symlink('/usr/share', path.join(dir, 'docs'));
    await mkdir(path.join(dir, 'scripts'));
    await symlink('/etc/passwd', path.join(dir, 'scripts/passwd'));
    const r = await runCli(['validate', dir]);
    assert.equal(r.err, '');
    assert.equal(r.code, 0);
  });
});

describe('vaquero validate: bad arguments', () => {
  test('a nonexistent directory fails cleanly', async () => {
    const dir = path.join(tmpdir(), 'vaquero-no-such-sot');
    const r = await runCli(['validate', dir]);
    assertNoStackTrace(r);
    assert.equal(r.err.split('\n').filter(Boolean).at(0)?.includes(dir), true, r.err);
    assert.ok(r.code === 1 || r.code === 2, `exit ${r.code}`);
  });

  test('a nonexistent directory is reported as such', async () => {
    const dir = path.join(tmpdir(), 'vaquero-no-such-sot');
    const r = await runCli(['validate', dir]);
    assertProblems(r, dir, [`${dir}:1: (file): no such directory`]);
  });

  test('a file instead of a directory', async () => {
    const file = path.join(repoRoot, 'test/fixtures/sot-min/os/flatcar.yaml');
    const r = await runCli(['validate', file]);
    assertProblems(r, file, [`${file}:1: (file): is not a directory`]);
  });

  test('an unknown command', async () => {
    const r = await runCli(['valdiate', 'examples/sot']);
    assertNoStackTrace(r);
    assert.equal(r.err.split('\n')[0], 'vaquero: unknown command "valdiate"');
    assert.match(r.err, /^usage: vaquero <command>/m);
    assert.equal(r.code, 2);
  });

  test('a missing argument', async () => {
    const r = await runCli(['validate']);
    assert.equal(r.err, 'vaquero validate: usage: vaquero validate <dir> [--json]\n');
    assert.equal(r.out, '');
    assert.equal(r.code, 2);
  });

  test('two directories', async () => {
    const r = await runCli(['validate', 'examples/sot', 'test/fixtures/sot-min']);
    assert.equal(r.err, 'vaquero validate: usage: vaquero validate <dir> [--json]\n');
    assert.equal(r.code, 2);
  });

  test('an unknown option', async () => {
    const r = await runCli(['validate', '--jsn', 'examples/sot']);
    assertNoStackTrace(r);
    assert.match(r.err, /^vaquero validate: Unknown option '--jsn'/);
    assert.equal(r.err.trimEnd().split('\n').length, 1, r.err);
    assert.equal(r.code, 2);
  });

  test('no command at all is a usage error: the usage on stderr, exit 2', async () => {
    const r = await runCli([]);
    assert.match(r.err, /^usage: vaquero <command>/);
    assert.equal(r.out, '');
    assert.equal(r.code, 2);
  });

  test('--help prints the usage on stdout, exit 0', async () => {
    const r = await runCli(['--help']);
    assert.match(r.out, /^usage: vaquero <command>/);
    assert.equal(r.err, '');
    assert.equal(r.code, 0);
  });
});
