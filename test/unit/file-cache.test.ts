// The agent's in-memory file cache (agent/file-cache.ts): what HTTP hands a slow client stays counted
// against the budget until the response ends, and a Range request never reads a whole file.
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { FileCache } from '../../agent/file-cache';

let dir: string;
const files: Record<string, { path: string; size: number; mtimeMs: number }> = {};

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'vq-file-cache-'));
  for (const [name, size] of [
    ['a', 60],
    ['b', 60],
    ['c', 30],
  ] as const) {
    const file = path.join(dir, name);
    await writeFile(file, Buffer.alloc(size, name));
    const st = await stat(file);
    files[name] = { path: file, size, mtimeMs: st.mtimeMs };
  }
});
after(() => rm(dir, { recursive: true, force: true }));

const acquire = (cache: FileCache, name: string, onlyIfCached = false) => {
  const f = files[name]!;
  return cache.acquire(f.path, f.size, f.mtimeMs, onlyIfCached);
};

test('a buffer still being sent is not evicted: a file that does not fit beside it is streamed', async () => {
  const cache = new FileCache({ fileMax: 100, budget: 100 });
  const a = acquire(cache, 'a');
  assert.ok(a);
  assert.equal((await a.data).toString(), 'a'.repeat(60));
  // a (60) is in use: b (60) would make 120 of 100, so it is not cached (the caller streams it).
  assert.equal(acquire(cache, 'b'), undefined);
  const c = acquire(cache, 'c');
  assert.ok(c, 'c (30) fits beside a');
  a.release();
  a.release(); // a second release changes nothing
  c.release();
  // Now a is idle and goes first (least recently used): b fits.
  const b = acquire(cache, 'b');
  assert.ok(b);
  assert.equal((await b.data).length, 60);
  b.release();
});

test('a Range request uses the cache only when the file is in it already', async () => {
  const cache = new FileCache({ fileMax: 100, budget: 100 });
  assert.equal(acquire(cache, 'a', true), undefined, 'a miss reads nothing');
  const whole = acquire(cache, 'a');
  assert.ok(whole);
  await whole.data;
  whole.release();
  const part = acquire(cache, 'a', true);
  assert.ok(part, 'a hit is shared');
  assert.equal((await part.data).length, 60);
  part.release();
});

test('a file replaced while a client still reads it stays counted until that client is done', async () => {
  const cache = new FileCache({ fileMax: 100, budget: 100 });
  const old = acquire(cache, 'a');
  assert.ok(old);
  await old.data;
  // The same path with another size (the file was replaced): the old buffer is still being sent.
  const f = files.a!;
  const next = cache.acquire(f.path, 61, f.mtimeMs + 1);
  // 60 (old, in use) + 61 > 100: the new version is not cached while the old one is held.
  assert.equal(next, undefined);
  old.release();
  const again = cache.acquire(f.path, 61, f.mtimeMs + 1);
  assert.ok(again, 'room once the old buffer is released');
  // The file on disk is still 60 bytes: the read fails as "changed while read", and is not kept.
  await assert.rejects(again.data, /changed while read/);
  again.release();
});
