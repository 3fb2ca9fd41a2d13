// `/cdn/*`: a caching reverse proxy to the site's CDN (agent `cdn` in schemas/site.ts), so that a rack
// of machines booting the same image fetches it over the WAN once. Objects are taken as immutable
// (versioned paths): a cached copy is served without asking the CDN again.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Hono, type Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { RequestIdVariables } from 'hono/request-id';
import type { AssetLog } from './deps';
import { etagMatches, parseRange } from './ranges';

export interface CdnOptions {
  /** The CDN's base URL; `/cdn/a/b` is fetched from `<url>/a/b`. */
  url: string;
  /** Where cached objects live (created when missing). */
  cacheDir: string;
  /** How long the CDN may take to answer with headers; 30 s by default. */
  timeoutMs?: number;
  log: (entry: AssetLog) => void;
}

/** What is kept beside each cached object. */
interface Meta {
  path: string;
  size: number;
  contentType: string;
  etag?: string;
  lastModified?: string;
}

/** The CDN's answer when it is not a body to cache: its status (404) or 502 with the reason. */
class UpstreamError extends Error {
  constructor(
    readonly status: 404 | 502,
    message: string,
  ) {
    super(message);
  }
}

/** One upstream fetch being written to a temp file; every client of the object reads it as it grows. */
class Download {
  written = 0;
  done = false;
  failed: Error | undefined;
  private waiters: (() => void)[] = [];

  constructor(
    readonly tmp: string,
    readonly final: string,
    readonly meta: Meta,
  ) {}

  wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  wait(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  settled(): Promise<void> {
    return this.done || this.failed ? Promise.resolve() : this.wait().then(() => this.settled());
  }
}

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

export function cdnRoutes(opts: CdnOptions) {
  const base = opts.url.endsWith('/') ? opts.url : `${opts.url}/`;
  const objects = path.join(opts.cacheDir, 'objects');
  const ready = mkdir(objects, { recursive: true });
  const inflight = new Map<string, Promise<Download>>();
  const keyOf = (objPath: string) => createHash('sha256').update(objPath).digest('hex');

  const cached = async (key: string): Promise<Meta | undefined> => {
    try {
      const meta = JSON.parse(await readFile(path.join(objects, `${key}.json`), 'utf8')) as Meta;
      const info = await stat(path.join(objects, key));
      return info.size === meta.size ? meta : undefined;
    } catch {
      return undefined;
    }
  };

  /** Starts the one upstream fetch of an object; resolves once the CDN answered with a body to cache. */
  const startDownload = async (key: string, objPath: string): Promise<Download> => {
    await ready;
    const url = new URL(objPath.split('/').map(encodeURIComponent).join('/'), base);
    const abort = new AbortController();
    const timeoutMs = opts.timeoutMs ?? 30_000;
    const stalled = () => abort.abort(new Error(`the CDN sent nothing for ${timeoutMs} ms`));
    const timer = setTimeout(stalled, timeoutMs);
    let res: Response;
    try {
      res = await fetch(url, { signal: abort.signal });
    } catch (err) {
      const cause =
        err instanceof Error ? ((err.cause as Error | undefined)?.message ?? err.message) : String(err);
      throw new UpstreamError(502, `CDN ${url.host} unreachable: ${cause}`);
    } finally {
      clearTimeout(timer);
    }
    if (res.status === 404) throw new UpstreamError(404, `${objPath} not found on the CDN`);
    if (res.status !== 200 || !res.body)
      throw new UpstreamError(502, `CDN answered ${res.status} for ${objPath}`);
    const length = res.headers.get('content-length');
    const meta: Meta = {
      path: objPath,
      size: length === null ? -1 : Number(length),
      contentType: res.headers.get('content-type') ?? 'application/octet-stream',
      ...(res.headers.get('etag') ? { etag: res.headers.get('etag') ?? '' } : {}),
      ...(res.headers.get('last-modified') ? { lastModified: res.headers.get('last-modified') ?? '' } : {}),
    };
    const final = path.join(objects, key);
    const tmp = `${final}.${randomBytes(6).toString('hex')}.tmp`;
    const out = await open(tmp, 'wx');
    const download = new Download(tmp, final, meta);
    const body = res.body;
    void (async () => {
      // A CDN that stops sending mid-body would hold every client of the object: the same limit applies
      // to the silence between two chunks.
      let idle = setTimeout(stalled, timeoutMs);
      try {
        for await (const chunk of body as AsyncIterable<Uint8Array>) {
          clearTimeout(idle);
          idle = setTimeout(stalled, timeoutMs);
          await out.write(chunk);
          download.written += chunk.length;
          download.wake();
        }
        if (meta.size >= 0 && download.written !== meta.size)
          throw new Error(`short body from the CDN: ${download.written} of ${meta.size} bytes`);
        meta.size = download.written;
        await out.sync();
        await out.close();
        // Meta first: an object file without its meta is never served, a meta without its object is a miss.
        const metaTmp = `${final}.json.${randomBytes(6).toString('hex')}.tmp`;
        await writeFile(metaTmp, JSON.stringify(meta));
        await rename(metaTmp, `${final}.json`);
        await rename(tmp, final);
        download.done = true;
        opts.log({ level: 'info', msg: `cached ${objPath} from the CDN (${meta.size} bytes)` });
      } catch (err) {
        download.failed = err instanceof Error ? err : new Error(String(err));
        await out.close().catch(() => {});
        await rm(tmp, { force: true });
        opts.log({ level: 'warn', msg: `CDN fetch of ${objPath} failed: ${download.failed.message}` });
      } finally {
        clearTimeout(idle);
        inflight.delete(key);
        download.wake();
      }
    })();
    return download;
  };

  const download = (key: string, objPath: string): Promise<Download> => {
    let pending = inflight.get(key);
    if (!pending) {
      pending = startDownload(key, objPath);
      inflight.set(key, pending);
      // A failure before the body (404, unreachable) is not kept: the next request asks again.
      pending.catch(() => inflight.delete(key));
    }
    return pending;
  };

  /** A client's view of a download in progress: the temp file, read up to what has been written. */
  const follow = (dl: Download): ReadableStream<Uint8Array> => {
    let handle: FileHandle | undefined;
    let pos = 0;
    const close = () => handle?.close().catch(() => {});
    return new ReadableStream<Uint8Array>({
      async start() {
        // Once renamed, the temp file is gone; the same bytes are then under the final name.
        handle = await open(dl.tmp, 'r').catch(() => open(dl.final, 'r'));
      },
      async pull(controller) {
        for (;;) {
          if (pos < dl.written) {
            const buf = Buffer.alloc(Math.min(256 * 1024, dl.written - pos));
            const { bytesRead } = await (handle as FileHandle).read(buf, 0, buf.length, pos);
            pos += bytesRead;
            controller.enqueue(new Uint8Array(buf.buffer, buf.byteOffset, bytesRead));
            return;
          }
          if (dl.failed) {
            await close();
            // The client sees its connection cut short, never a complete-looking partial body.
            controller.error(dl.failed);
            return;
          }
          if (dl.done) {
            await close();
            controller.close();
            return;
          }
          await dl.wait();
        }
      },
      async cancel() {
        await close();
      },
    });
  };

  const headersOf = (meta: Meta): Record<string, string> => ({
    'Content-Type': meta.contentType,
    'Accept-Ranges': 'bytes',
    ...(meta.etag ? { ETag: meta.etag } : {}),
    ...(meta.lastModified ? { 'Last-Modified': meta.lastModified } : {}),
    'X-Cache': 'HIT',
  });

  const serveCached = (c: Context, key: string, meta: Meta): Response => {
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
    const file = path.join(objects, key);
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
  };

  const app = new Hono<{ Variables: RequestIdVariables }>();
  app.get('/cdn/*', async (c) => {
    // The raw path: Hono's c.req.path is already percent-decoded, which would hide `%2e%2e` and `%2f`.
    const objPath = objectPath(new URL(c.req.url).pathname.slice('/cdn/'.length));
    const key = keyOf(objPath);
    const hit = await cached(key);
    if (hit) return serveCached(c, key, hit);
    let dl: Download;
    try {
      dl = await download(key, objPath);
    } catch (err) {
      if (!(err instanceof UpstreamError)) throw err;
      // Said here, not by the app's error handler: it hides the reason of every 5xx.
      opts.log({ level: 'warn', msg: err.message, path: objPath });
      return c.text(`${err.message}\n`, err.status);
    }
    // Conditional and range requests are answered from the cache once the object is complete.
    if (c.req.header('Range') || c.req.header('If-None-Match') || c.req.method === 'HEAD') {
      await dl.settled();
      const meta = dl.done ? await cached(key) : undefined;
      if (!meta) return c.text(`CDN fetch of ${objPath} failed: ${dl.failed?.message}\n`, 502);
      return serveCached(c, key, meta);
    }
    const headers: Record<string, string> = { ...headersOf(dl.meta), 'X-Cache': 'MISS' };
    if (dl.meta.size >= 0) headers['Content-Length'] = String(dl.meta.size);
    return c.body(follow(dl), 200, headers);
  });
  return app;
}
