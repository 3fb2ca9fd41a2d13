// The one helper behind every state file the server and agent keep on disk: a reader sees a whole
// version or none, and a failed write leaves the old version and no temp file behind.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import {
  appendLine,
  appendLineSync,
  readFileIfExists,
  readFileIfExistsSync,
  readJsonIfExists,
  writeFileAtomic,
  writeFileAtomicSync,
} from '../../activities/store/atomic-file';

async function workDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'vq-atomic-file-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('a write replaces the content whole, async and sync, with or without fsync', async (t) => {
  const file = path.join(await workDir(t), 'state.json');
  await writeFileAtomic(file, 'a much longer first version');
  await writeFileAtomic(file, 'second', { fsync: true });
  assert.equal(await readFile(file, 'utf8'), 'second');
  writeFileAtomicSync(file, 'third');
  assert.equal(readFileIfExistsSync(file), 'third');
  writeFileAtomicSync(file, '{"n":4}', { fsync: true });
  assert.deepEqual(await readJsonIfExists(file), { n: 4 });
});

test('a missing file reads as undefined', async (t) => {
  const file = path.join(await workDir(t), 'nowhere', 'state.json');
  assert.equal(await readFileIfExists(file), undefined);
  assert.equal(readFileIfExistsSync(file), undefined);
  assert.equal(await readJsonIfExists(file), undefined);
});

test('missing directories are created by writes and appends', async (t) => {
  const dir = await workDir(t);
  await writeFileAtomic(path.join(dir, 'a', 'b', 'state'), 'x');
  writeFileAtomicSync(path.join(dir, 'c', 'd', 'state'), 'y');
  await appendLine(path.join(dir, 'e', 'log'), 'one', { fsync: true });
  await appendLine(path.join(dir, 'e', 'log'), 'two');
  appendLineSync(path.join(dir, 'f', 'log'), 'three');
  assert.equal(await readFile(path.join(dir, 'a', 'b', 'state'), 'utf8'), 'x');
  assert.equal(await readFile(path.join(dir, 'c', 'd', 'state'), 'utf8'), 'y');
  assert.equal(await readFile(path.join(dir, 'e', 'log'), 'utf8'), 'one\ntwo\n');
  assert.equal(await readFile(path.join(dir, 'f', 'log'), 'utf8'), 'three\n');
});

test('concurrent writes to one file leave one complete version and no temp files', async (t) => {
  const dir = await workDir(t);
  const file = path.join(dir, 'state');
  // Large enough that each write takes several syscalls and the writers interleave.
  const versions = Array.from({ length: 20 }, (_, i) => String(i % 10).repeat(1_000_000 + i));
  await Promise.all(versions.map((v) => writeFileAtomic(file, v)));
  assert.ok(versions.includes(await readFile(file, 'utf8')));
  assert.deepEqual(await readdir(dir), ['state']);
});

test('a failed write leaves the old content and no temp file', async (t) => {
  const dir = await workDir(t);
  // The target's directory is a file: nothing can be created under it.
  const blocker = path.join(dir, 'blocker');
  await writeFile(blocker, 'old');
  await assert.rejects(writeFileAtomic(path.join(blocker, 'state'), 'new'));
  assert.throws(() => writeFileAtomicSync(path.join(blocker, 'state'), 'new'));
  assert.equal(await readFile(blocker, 'utf8'), 'old');
  // The target is a non-empty directory: the temp file is written, the rename over it fails.
  const target = path.join(dir, 'target');
  await mkdir(target);
  await writeFile(path.join(target, 'kept'), 'old');
  await assert.rejects(writeFileAtomic(target, 'new'));
  assert.throws(() => writeFileAtomicSync(target, 'new'));
  assert.equal(await readFile(path.join(target, 'kept'), 'utf8'), 'old');
  assert.deepEqual((await readdir(dir)).sort(), ['blocker', 'target']);
});

test('read errors other than a missing file are thrown', async (t) => {
  const dir = await workDir(t);
  await assert.rejects(readFileIfExists(dir), { code: 'EISDIR' });
  assert.throws(() => readFileIfExistsSync(dir), { code: 'EISDIR' });
  await writeFile(path.join(dir, 'bad.json'), '{ torn');
  await assert.rejects(readJsonIfExists(path.join(dir, 'bad.json')), SyntaxError);
});
