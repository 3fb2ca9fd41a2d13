// A rename is atomic but not durable: after a power loss the new name can point at an empty file
// unless the bytes were synced before the rename and the directory after it. strace shows which
// system calls the one shared helper really makes, in order.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const STRACE = '/usr/bin/strace';
const IN_CI = Boolean(process.env.CI) && process.env.CI !== 'false';
const root = fileURLToPath(new URL('../..', import.meta.url));
const helper = path.join(root, 'activities/store/atomic-file.ts');

const SCRIPT = `
const m = await import(process.argv[2]);
const dir = process.argv[3];
await m.writeFileAtomic(dir + '/async.json', 'a');
m.writeFileAtomicSync(dir + '/sync.json', 'b');
await m.writeFileAtomic(dir + '/optout.json', 'c', { fsync: false });
await m.appendLine(dir + '/async.log', 'd');
m.appendLineSync(dir + '/sync.log', 'e');
m.appendLineSync(dir + '/optout.log', 'f', { fsync: false });
`;

interface Call {
  name: string;
  /** The path strace -y shows for the fd, or the rename's target. */
  target: string;
}

function parse(trace: string): Call[] {
  const calls: Call[] = [];
  for (const line of trace.split('\n')) {
    const sync = /\b(fsync|fdatasync)\(\d+<([^>]+)>/.exec(line);
    if (sync) calls.push({ name: 'sync', target: sync[2]! });
    const ren = /\brename(?:at2?)?\((?:[^,]+, )?"([^"]+)", (?:[^,]+, )?"([^"]+)"/.exec(line);
    if (ren) calls.push({ name: 'rename', target: `${ren[1]} -> ${ren[2]}` });
  }
  return calls;
}

test('atomic writes and appends fsync the file and its directory unless a caller opts out', async (t) => {
  if (!existsSync(STRACE)) {
    if (IN_CI) assert.fail('strace missing; CI must provide it');
    return t.skip('strace missing (apt-get install strace)');
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'vq-fsync-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const script = path.join(dir, 'write.mjs');
  const out = path.join(dir, 'trace');
  await writeFile(script, SCRIPT);
  const args = [process.execPath, '--import', 'tsx', script, helper, dir];
  await promisify(execFile)(
    STRACE,
    ['-f', '-y', '-o', out, '-e', 'trace=fsync,fdatasync,rename,renameat,renameat2', ...args],
    { cwd: root, timeout: 60_000 },
  );
  const calls = parse(await readFile(out, 'utf8'));
  const index = (pred: (c: Call) => boolean, what: string) => {
    const i = calls.findIndex(pred);
    assert.ok(i >= 0, `${what} not found in ${JSON.stringify(calls, null, 1)}`);
    return i;
  };
  for (const name of ['async.json', 'sync.json']) {
    const file = path.join(dir, name);
    const renamed = index(
      (c) => c.name === 'rename' && c.target.endsWith(` -> ${file}`),
      `rename to ${name}`,
    );
    const synced = index(
      (c) => c.name === 'sync' && c.target.startsWith(`${file}.`),
      `fsync of ${name}'s temp`,
    );
    assert.ok(synced < renamed, `${name}: the bytes are synced before the rename`);
    const dirSynced = calls.findIndex((c, i) => i > renamed && c.name === 'sync' && c.target === dir);
    assert.ok(dirSynced > renamed, `${name}: the directory is synced after the rename`);
  }
  for (const name of ['async.log', 'sync.log']) {
    const synced = index((c) => c.name === 'sync' && c.target === path.join(dir, name), `fsync of ${name}`);
    const dirSynced = calls.findIndex((c, i) => i > synced && c.name === 'sync' && c.target === dir);
    assert.ok(dirSynced > synced, `${name}: the new file's directory entry is synced`);
  }
  const optout = calls.filter((c) => c.name === 'sync' && /optout/.test(c.target));
  assert.deepEqual(optout, [], 'fsync: false writes without syncing');
  assert.equal(await readFile(path.join(dir, 'sync.json'), 'utf8'), 'b');
});
