// `vaquero --help` and `vaquero --version`: what a user types first.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { repoRoot, runCli } from '../helpers/sot';

async function packageVersion(): Promise<string> {
  const pkg = JSON.parse(await readFile(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

describe('vaquero --help and --version', () => {
  test('--help lists every command, agent (run by bin/vaquero.mjs before the CLI) included', async () => {
    const r = await runCli(['--help']);
    assert.equal(r.code, 0);
    const commands = r.out.split('\ncommands:\n')[1] ?? '';
    const names = [...commands.matchAll(/^ {2}(\S+)/gm)].map((m) => m[1]);
    assert.deepEqual(names.sort(), [
      'agent',
      'certs',
      'lab',
      'migrate',
      'plan',
      'preview',
      'rollout',
      'server',
      'standalone',
      'validate',
      'version',
    ]);
  });

  test('--version, -V and version print "vaquero <version>" from package.json', async () => {
    const expected = `vaquero ${await packageVersion()}\n`;
    for (const argv of [['--version'], ['-V'], ['version']]) {
      assert.deepEqual(await runCli(argv), { code: 0, out: expected, err: '' }, argv[0]);
    }
  });

  test('bin/vaquero.mjs --version prints it too', async () => {
    const bin = path.join(repoRoot, 'bin/vaquero.mjs');
    const { stdout } = await promisify(execFile)(process.execPath, [bin, '--version']);
    assert.equal(stdout, `vaquero ${await packageVersion()}\n`);
  });
});
