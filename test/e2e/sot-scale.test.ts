// Bad input at scale (issue 12): a source of truth of 200,000 hosts, past what Vaquero validates and
// plans, is a clear message from `vaquero validate` and `vaquero plan` in a heap of 512 MB, not an
// out-of-memory crash (before the limit, `validate` read every hosts file into YAML documents: some
// 27 KB per host, gigabytes here).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { writeBigSot } from '../../scripts/bench/lib/big-sot';
import { MAX_HOSTS } from '../../sot/fast-hosts';
import { repoRoot } from '../helpers/sot';

const HEAP_MB = 512;
let work: string;
let sot: string;

before(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'vaquero-sot-200k-'));
  sot = path.join(work, 'sot');
  await writeBigSot(sot, 200_000);
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

function vaquero(args: string[]): Promise<{ code: number | string; out: string; err: string }> {
  const argv = [`--max-old-space-size=${HEAP_MB}`, 'bin/vaquero.mjs', ...args];
  return new Promise((resolve) => {
    execFile(process.execPath, argv, { cwd: repoRoot, timeout: 120_000 }, (err, out, errText) => {
      resolve({ code: err ? (err.code ?? err.signal ?? -1) : 0, out, err: errText });
    });
  });
}

const limitLine = `sites/dc1/hosts/hosts-100.yaml:1: (file): too many hosts (more than ${MAX_HOSTS} in the source of truth); split it into several`;

describe('a 200,000-host source of truth in a bounded heap', () => {
  test('vaquero validate refuses it with the limit, exit 1', async () => {
    const r = await vaquero(['validate', sot]);
    assert.doesNotMatch(r.err, /heap out of memory/);
    assert.equal(r.code, 1, r.err.slice(-2000));
    assert.equal(r.err, `${limitLine}\n${sot}: 1 problem\n`);
  });

  test('vaquero plan refuses it with the same message, exit 1', async () => {
    const r = await vaquero(['plan', sot, '--from', sot, '--json']);
    assert.doesNotMatch(r.err, /heap out of memory/);
    assert.equal(r.code, 1, r.err.slice(-2000));
    assert.equal(r.out, '');
    assert.match(r.err, new RegExp(`^${limitLine.replace(/[()]/g, '\\$&')}\n`));
    assert.match(r.err, /is not a valid source of truth \(1 problems\)/);
  });
});
