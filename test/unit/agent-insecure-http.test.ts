// `vaquero agent --server http://…` would send the site token in cleartext: the real process refuses
// it unless the operator says --insecure-http, and `vaquero agent --help` tells why.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { agentConfig } from '../../agent/args';
import { repoRoot } from '../helpers/sot';

async function agent(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, ['bin/vaquero.mjs', 'agent', ...args], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { code, out, err };
}

test('an http:// server URL is refused unless --insecure-http is given', async (t) => {
  const work = await mkdtemp(path.join(tmpdir(), 'vq-insecure-http-'));
  t.after(() => rm(work, { recursive: true, force: true }));
  const base = [
    '--site',
    'fra1',
    '--state-dir',
    path.join(work, 'state'),
    '--temporal-address',
    '127.0.0.1:1',
  ];
  // The token file does not exist: getting that far means the arguments were accepted.
  const remote = (url: string) => [
    ...base,
    '--no-dhcp',
    '--server',
    url,
    '--token-file',
    path.join(work, 'none'),
  ];

  const refused = await agent(remote('http://127.0.0.1:1'));
  assert.equal(refused.code, 2, refused.err);
  assert.match(
    refused.err.trim(),
    /^vaquero agent: server: --server http:\/\/127\.0\.0\.1:1 would send the site token unencrypted: use https:\/\/, or pass --insecure-http/,
  );
  assert.doesNotMatch(refused.err, /\n\s+at /, 'no stack trace');
  for (const url of ['HTTP://127.0.0.1:1', 'ftp://127.0.0.1:1'])
    assert.throws(() => agentConfig([...base, '--server', url, '--token-file', 'x'], {}), /https:\/\//, url);

  const allowed = await agent([...remote('http://127.0.0.1:1'), '--insecure-http']);
  assert.equal(allowed.code, 2, allowed.err);
  assert.match(allowed.err.trim().split('\n').at(-1) ?? '', /^vaquero agent: cannot read --token-file/);
  assert.equal(agentConfig([...remote('http://127.0.0.1:1'), '--insecure-http'], {}).insecureHttp, true);

  const tls = await agent(remote('https://127.0.0.1:1'));
  assert.match(tls.err.trim().split('\n').at(-1) ?? '', /^vaquero agent: cannot read --token-file/);

  const help = await agent(['--help']);
  assert.equal(help.code, 0, help.err);
  assert.match(help.out, /^usage: vaquero agent --site <site>/);
  assert.match(help.out, /--insecure-http\s+.*cleartext/);
});
