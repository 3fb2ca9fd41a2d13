// `/cdn/*`: a caching reverse proxy to the site's CDN (agent `cdn` in schemas/site.ts), so that a rack
// of machines booting the same image fetches it over the WAN once. Objects are taken as immutable
// (versioned paths): a cached copy is served without asking the CDN again.
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { Hono, type Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { RequestIdVariables } from 'hono/request-id';
import {
  createCdnCache,
  follow,
  UpstreamError,
  type CdnCache,
  type CdnOptions,
  type Download,
  type Meta,
} from './cdn-cache';
import { etagMatches, parseRange } from './ranges';

/** The object path of a `/cdn/...` URL as clean segments, or a 400 for `..`, `.`, empty, `\` or NUL. */
export function objectPath(rawPath: string): string {
  const segments = rawPath.split('/');
  let decoded: string[];
  try {
    decoded = segments.map((s) => decodeURIComponent(s));
  } catch {
    throw new HTTPException(400, { message: 'malformed CDN path' });
  }
  // An empty segment is a leading `/` (an absolute path) or `//`; neither names a CDN object.
  if (decoded.some((s) => s === '' || s === '.' || s === '..' || /[/\\\0]/.test(s)))
    throw new HTTPException(400, { message: `refused CDN path ${rawPath}` });
  return decoded.join('/');
}

const headersOf = (meta: Meta): Record<string, string> => ({
  'Content-Type': meta.contentType,
  'Accept-Ranges': 'bytes',
  ...(meta.etag ? { ETag: meta.etag } : {}),
  ...(meta.lastModified ? { 'Last-Modified': meta.lastModified } : {}),
  'X-Cache': 'HIT',
});

/** A complete cached object, with its conditional (ETag, If-Range) and single-range answers. */
function serveCached(c: Context, file: string, meta: Meta): Response {
  const headers = headersOf(meta);
  const ifNoneMatch = c.req.header('If-None-Match');
  if (ifNoneMatch && meta.etag && etagMatches(ifNoneMatch, meta.etag)) return c.body(null, 304, headers);
  const ifRange = c.req.header('If-Range');
  const rangeHeader =
    ifRange && ifRange !== meta.etag && ifRange !== meta.lastModified ? undefined : c.req.header('Range');
  const ranges = rangeHeader ? parseRange(rangeHeader, meta.size) : undefined;
  if (ranges === 'unsatisfiable')
    return c.body(null, 416, { ...headers, 'Content-Range': `bytes */${meta.size}` });
  const range = ranges?.length === 1 ? ranges[0] : undefined;
  const head = c.req.method === 'HEAD';
  if (range) {
    headers['Content-Range'] = `bytes ${range.start}-${range.end}/${meta.size}`;
    headers['Content-Length'] = String(range.end - range.start + 1);
    const body = Readable.toWeb(createReadStream(file, range)) as ReadableStream;
    return head ? c.body(null, 206, headers) : c.body(body, 206, headers);
  }
  headers['Content-Length'] = String(meta.size);
  return head
    ? c.body(null, 200, headers)
    : c.body(Readable.toWeb(createReadStream(file)) as ReadableStream, 200, headers);
}

/** A miss: the object streamed to the client as the CDN sends it, or the CDN's failure. */
async function serveMiss(
  c: Context,
  cache: CdnCache,
  opts: CdnOptions,
  objPath: string,
  key: string,
): Promise<Response> {
  let dl: Download;
  try {
    dl = await cache.download(key, objPath);
  } catch (err) {
    if (!(err instanceof UpstreamError)) throw err;
    // Said here, not by the app's error handler: it hides the reason of every 5xx.
    opts.log({ level: 'warn', msg: err.message, path: objPath });
    return c.text(`${err.message}\n`, err.status);
  }
  // Conditional and range requests are answered from the cache once the object is complete.
  if (c.req.header('Range') || c.req.header('If-None-Match') || c.req.method === 'HEAD') {
    await dl.settled();
    const meta = dl.done ? await cache.cached(key) : undefined;
    if (!meta) return c.text(`CDN fetch of ${objPath} failed: ${dl.failed?.message}\n`, 502);
    return serveCached(c, cache.file(key), meta);
  }
  const headers: Record<string, string> = { ...headersOf(dl.meta), 'X-Cache': 'MISS' };
  if (dl.meta.size >= 0) headers['Content-Length'] = String(dl.meta.size);
  return c.body(follow(dl), 200, headers);
}

export function cdnRoutes(opts: CdnOptions) {
  const cache = createCdnCache(opts);
  const app = new Hono<{ Variables: RequestIdVariables }>();
  app.get('/cdn/*', async (c) => {
    // The raw path: Hono's c.req.path is already percent-decoded, which would hide `%2e%2e` and `%2f`.
    const objPath = objectPath(new URL(c.req.url).pathname.slice('/cdn/'.length));
    const key = cache.keyOf(objPath);
    const hit = await cache.cached(key);
    if (hit) return serveCached(c, cache.file(key), hit);
    return serveMiss(c, cache, opts, objPath, key);
  });
  return app;
}
