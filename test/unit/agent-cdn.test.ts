// The asset server's /cdn/ cache against a real local HTTP server standing in for the CDN, counting
// what reaches it: one fetch per object however many clients ask, atomic cache entries, Range and
// conditional requests from the cache, refused paths, and a clear 502 when the CDN is down.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { serve } from '@hono/node-server';
import { createAssetApp, type AssetLog } from '../../agent/http/app';
import { objectPath } from '../../agent/http/cdn';

const KERNEL = randomBytes(3 * 1024 * 1024 + 5);
const INITRD = randomBytes(200_000);
const LAST_MODIFIED = 'Wed, 01 Jan 2025 00:00:00 GMT';
const hits = new Map<string, number>();
const logs: AssetLog[] = [];
let cdn: http.Server;
let cdnUrl: string;
let agent: ReturnType<typeof serve>;
let base: string;
let cacheDir: string;

/** The stand-in CDN: slow enough that concurrent clients overlap one transfer. */
function cdnHandler(req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = req.url ?? '';
  hits.set(url, (hits.get(url) ?? 0) + 1);
  const send = (body: Buffer, etag: string) => {
    res.writeHead(200, {
      'Content-Length': body.length,
      'Content-Type': 'application/octet-stream',
      ETag: etag,
      'Last-Modified': LAST_MODIFIED,
    });
    let at = 0;
    const step = () => {
      if (at >= body.length) return res.end();
      res.write(body.subarray(at, at + 256 * 1024));
      at += 256 * 1024;
      setTimeout(step, 20);
    };
    step();
  };
  if (url === '/flatcar/3815.2.0/vmlinuz') return send(KERNEL, '"kernel-v1"');
  if (url === '/flatcar/3815.2.0/initrd%20v1.cpio') return send(INITRD, '"initrd-v1"');
  if (url === '/short') {
    // Promises 1 MB, sends 100 kB, then hangs up.
    res.writeHead(200, { 'Content-Length': 1_000_000, ETag: '"short"' });
    res.write(randomBytes(100_000), () => setTimeout(() => res.destroy(), 50));
    return;
  }
  if (url === '/stall') {
    // Sends a little, then nothing, connection held open.
    res.writeHead(200, { 'Content-Length': 1_000_000 });
    res.write(randomBytes(1000));
    return;
  }
  if (url === '/broken') {
    res.writeHead(500).end('oops');
    return;
  }
  res.writeHead(404).end('not found');
}

async function listen(server: http.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

before(async () => {
  cdn = http.createServer(cdnHandler);
  cdnUrl = `http://127.0.0.1:${await listen(cdn)}`;
  cacheDir = await mkdtemp(path.join(tmpdir(), 'h1-cdn-'));
  const unused = () => Promise.reject(new Error('not used by /cdn/'));
  const app = createAssetApp({
    models: { forCommit: unused, current: () => assert.fail('not used') },
    site: 'lab1',
    netboot: { lookup: unused },
    events: { emit: () => {} },
    filesDir: cacheDir,
    log: (entry) => logs.push(entry),
    cdn: { url: `${cdnUrl}/`, cacheDir, timeoutMs: 2_000 },
  });
  agent = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => agent.once('listening', resolve));
  base = `http://127.0.0.1:${(agent.address() as AddressInfo).port}`;
});

after(async () => {
  await new Promise((resolve) => agent.close(resolve));
  cdn.closeAllConnections();
  await new Promise((resolve) => cdn.close(resolve));
  await rm(cacheDir, { recursive: true, force: true });
});

const bytes = async (res: Response) => Buffer.from(await res.arrayBuffer());
const cacheFiles = async () => readdir(path.join(cacheDir, 'objects'));

test('eight concurrent clients of an uncached object share one CDN fetch and all get it whole', async () => {
  const url = `${base}/cdn/flatcar/3815.2.0/vmlinuz`;
  const responses = await Promise.all(Array.from({ length: 8 }, () => fetch(url)));
  for (const res of responses) {
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('etag'), '"kernel-v1"');
    assert.equal(res.headers.get('last-modified'), LAST_MODIFIED);
    assert.equal(res.headers.get('content-length'), String(KERNEL.length));
  }
  const bodies = await Promise.all(responses.map(bytes));
  for (const body of bodies) assert.ok(body.equals(KERNEL));
  assert.equal(hits.get('/flatcar/3815.2.0/vmlinuz'), 1);
  // The clients have every byte once Content-Length is reached; the cache entry lands just after.
  for (let i = 0; (await cacheFiles()).some((f) => f.endsWith('.tmp')); i++) {
    assert.ok(i < 100, `cache entry not settled: ${(await cacheFiles()).join(', ')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal((await cacheFiles()).length, 2, 'the object and its meta');
  assert.deepEqual(
    responses.map((r) => r.headers.get('x-cache')),
    Array(8).fill('MISS'),
  );
});

test('a cached object is served from disk: ETag, Last-Modified, 304, Range, no CDN hit', async () => {
  const url = `${base}/cdn/flatcar/3815.2.0/vmlinuz`;
  const res = await fetch(url);
  assert.equal(res.headers.get('x-cache'), 'HIT');
  assert.equal(res.headers.get('etag'), '"kernel-v1"');
  assert.equal(res.headers.get('last-modified'), LAST_MODIFIED);
  assert.ok((await bytes(res)).equals(KERNEL));
  const notModified = await fetch(url, { headers: { 'If-None-Match': '"kernel-v1"' } });
  assert.equal(notModified.status, 304);
  const range = await fetch(url, { headers: { Range: 'bytes=1000-1999' } });
  assert.equal(range.status, 206);
  assert.equal(range.headers.get('content-range'), `bytes 1000-1999/${KERNEL.length}`);
  assert.ok((await bytes(range)).equals(KERNEL.subarray(1000, 2000)));
  const tail = await fetch(url, { headers: { Range: 'bytes=-10' } });
  assert.ok((await bytes(tail)).equals(KERNEL.subarray(KERNEL.length - 10)));
  const beyond = await fetch(url, { headers: { Range: `bytes=${KERNEL.length}-` } });
  assert.equal(beyond.status, 416);
  await beyond.arrayBuffer();
  assert.equal(hits.get('/flatcar/3815.2.0/vmlinuz'), 1);
});

test('a Range request for an uncached object fetches it once and answers from the cache', async () => {
  const url = `${base}/cdn/flatcar/3815.2.0/initrd%20v1.cpio`;
  const range = await fetch(url, { headers: { Range: 'bytes=10-19' } });
  assert.equal(range.status, 206);
  assert.ok((await bytes(range)).equals(INITRD.subarray(10, 20)));
  assert.ok((await bytes(await fetch(url))).equals(INITRD));
  assert.equal(hits.get('/flatcar/3815.2.0/initrd%20v1.cpio'), 1);
});

test('a short CDN body is cut short for the client and leaves no cache entry', async () => {
  const before = await cacheFiles();
  const res = await fetch(`${base}/cdn/short`);
  assert.equal(res.status, 200);
  await assert.rejects(res.arrayBuffer());
  // The failed download is cleaned up (its temp file too) and the next request asks the CDN again.
  const failures = () => logs.filter((l) => l.msg.startsWith('CDN fetch of short failed')).length;
  for (let i = 0; failures() < 1; i++) {
    assert.ok(i < 100, 'the failed download was never cleaned up');
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.deepEqual(await cacheFiles(), before);
  const again = await fetch(`${base}/cdn/short`);
  await assert.rejects(again.arrayBuffer());
  assert.equal(hits.get('/short'), 2);
  assert.ok(logs.some((l) => l.msg.startsWith('CDN fetch of short failed')));
});

test('a CDN that stalls mid-body is given up after the timeout; nothing is cached', async () => {
  const started = Date.now();
  const res = await fetch(`${base}/cdn/stall`);
  await assert.rejects(res.arrayBuffer());
  const waited = Date.now() - started;
  assert.ok(waited >= 1_900 && waited < 10_000, `gave up after ${waited} ms`);
  for (let i = 0; !logs.some((l) => l.msg.includes('CDN fetch of stall failed')); i++) {
    assert.ok(i < 100, 'no failure logged');
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(!(await cacheFiles()).some((f) => f.endsWith('.tmp')));
});

test('CDN 404 passes through, CDN 500 is a 502 with the reason; neither is cached', async () => {
  const missing = await fetch(`${base}/cdn/nope.img`);
  assert.equal(missing.status, 404);
  assert.match(await missing.text(), /nope\.img not found on the CDN/);
  const broken = await fetch(`${base}/cdn/broken`);
  assert.equal(broken.status, 502);
  assert.match(await broken.text(), /CDN answered 500 for broken/);
  await fetch(`${base}/cdn/broken`).then((r) => r.text());
  assert.equal(hits.get('/broken'), 2);
});

/** A request with its path sent exactly as written (fetch would normalize `..`). */
function rawGet(rawPath: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const { hostname, port } = new URL(base);
    const req = http.get({ hostname, port, path: rawPath }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
}

test('`..`, absolute and odd paths are refused before the CDN is asked', async () => {
  const cdnHits = [...hits.values()].reduce((a, b) => a + b, 0);
  for (const bad of [
    '/cdn/../etc/passwd',
    '/cdn/flatcar/../../etc/passwd',
    '/cdn/%2e%2e/etc/passwd',
    '/cdn/a%2f..%2f..%2fetc/passwd',
    '/cdn//etc/passwd',
    '/cdn/%2Fetc%2Fpasswd',
    '/cdn/a%5c..%5cb',
    '/cdn/a%00b',
    '/cdn/%zz',
  ]) {
    const res = await rawGet(bad);
    assert.ok(res.status === 400 || res.status === 404, `${bad}: ${res.status}`);
  }
  assert.equal(
    [...hits.values()].reduce((a, b) => a + b, 0),
    cdnHits,
  );
  // The URL parser already resolves `..` and `.` (also %2e%2e) before the route; objectPath refuses
  // them anyway, for any caller that hands it a raw path.
  for (const bad of ['a/../b', '..', '%2e%2e/x', 'a/./b', '/abs', 'a//b', 'a%5cb'])
    assert.throws(() => objectPath(bad), /refused CDN path/, bad);
  assert.equal(objectPath('flatcar/3815.2.0/initrd%20v1.cpio'), 'flatcar/3815.2.0/initrd v1.cpio');
});

test('with the CDN down: cached objects are still served, others get a clear 502', async () => {
  cdn.closeAllConnections();
  await new Promise((resolve) => cdn.close(resolve));
  const cachedRes = await fetch(`${base}/cdn/flatcar/3815.2.0/vmlinuz`);
  assert.equal(cachedRes.status, 200);
  assert.ok((await bytes(cachedRes)).equals(KERNEL));
  const res = await fetch(`${base}/cdn/flatcar/3815.2.0/other`);
  assert.equal(res.status, 502);
  assert.match(await res.text(), /^CDN 127\.0\.0\.1:\d+ unreachable: .*ECONNREFUSED/);
  // Listening again for after().
  cdn = http.createServer(cdnHandler);
  await listen(cdn);
});
