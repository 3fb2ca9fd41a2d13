// The `/cdn/*` proxy's cache: one upstream fetch per object at a time, written to a temp file that
// every client of the object reads as it grows, then renamed into place beside its meta.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../../activities/store/atomic-file';
import type { AssetLog } from './deps';

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
export interface Meta {
  path: string;
  size: number;
  contentType: string;
  etag?: string;
  lastModified?: string;
}

/** The CDN's answer when it is not a body to cache: its status (404) or 502 with the reason. */
export class UpstreamError extends Error {
  constructor(
    readonly status: 404 | 502,
    message: string,
  ) {
    super(message);
  }
}

/** One upstream fetch being written to a temp file; every client of the object reads it as it grows. */
export class Download {
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

export interface CdnCache {
  /** The cache key (file name) of an object path. */
  keyOf(objPath: string): string;
  /** The file a complete object is kept in. */
  file(key: string): string;
  /** The meta of a complete cached object, undefined on a miss. */
  cached(key: string): Promise<Meta | undefined>;
  /** The object's download, started unless one is under way; rejects with an UpstreamError. */
  download(key: string, objPath: string): Promise<Download>;
}

export function createCdnCache(opts: CdnOptions): CdnCache {
  const objects = path.join(opts.cacheDir, 'objects');
  const ready = mkdir(objects, { recursive: true });
  const inflight = new Map<string, Promise<Download>>();
  const start = async (key: string, objPath: string): Promise<Download> => {
    await ready;
    return startDownload(opts, objPath, path.join(objects, key), () => inflight.delete(key));
  };
  return {
    keyOf: (objPath) => createHash('sha256').update(objPath).digest('hex'),
    file: (key) => path.join(objects, key),
    async cached(key) {
      try {
        const meta = JSON.parse(await readFile(path.join(objects, `${key}.json`), 'utf8')) as Meta;
        const info = await stat(path.join(objects, key));
        return info.size === meta.size ? meta : undefined;
      } catch {
        return undefined;
      }
    },
    download(key, objPath) {
      let pending = inflight.get(key);
      if (!pending) {
        pending = start(key, objPath);
        inflight.set(key, pending);
        // A failure before the body (404, unreachable) is not kept: the next request asks again.
        pending.catch(() => inflight.delete(key));
      }
      return pending;
    },
  };
}

/** An upstream request that the CDN's silence aborts: `arm` (re)starts the clock, `disarm` stops it. */
class StallTimer {
  readonly abort = new AbortController();
  private timer: NodeJS.Timeout | undefined;

  constructor(readonly timeoutMs: number) {}

  arm(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(
      () => this.abort.abort(new Error(`the CDN sent nothing for ${this.timeoutMs} ms`)),
      this.timeoutMs,
    );
  }

  disarm(): void {
    clearTimeout(this.timer);
  }
}

/** The CDN's answer for an object, and its meta, when it is a body to cache; else an UpstreamError. */
async function fetchObject(base: string, objPath: string, stall: StallTimer) {
  const url = new URL(objPath.split('/').map(encodeURIComponent).join('/'), base);
  stall.arm();
  let res: Response;
  try {
    res = await fetch(url, { signal: stall.abort.signal });
  } catch (err) {
    const cause =
      err instanceof Error ? ((err.cause as Error | undefined)?.message ?? err.message) : String(err);
    throw new UpstreamError(502, `CDN ${url.host} unreachable: ${cause}`);
  } finally {
    stall.disarm();
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
  return { body: res.body, meta };
}

/**
 * Starts the one upstream fetch of an object into `final`; resolves once the CDN answered with a body
 * to cache, while the body goes on being written. `settled` is called when that write ends either way.
 */
async function startDownload(
  opts: CdnOptions,
  objPath: string,
  final: string,
  settled: () => void,
): Promise<Download> {
  const base = opts.url.endsWith('/') ? opts.url : `${opts.url}/`;
  const stall = new StallTimer(opts.timeoutMs ?? 30_000);
  const { body, meta } = await fetchObject(base, objPath, stall);
  const tmp = `${final}.${randomBytes(6).toString('hex')}.tmp`;
  const out = await open(tmp, 'wx');
  const download = new Download(tmp, final, meta);
  void writeBody(opts, download, body, out, stall).finally(() => {
    stall.disarm();
    settled();
    download.wake();
  });
  return download;
}

/** Writes the CDN's body to the temp file, then puts the object and its meta in place; never rejects. */
async function writeBody(
  opts: CdnOptions,
  download: Download,
  body: ReadableStream<Uint8Array>,
  out: FileHandle,
  stall: StallTimer,
): Promise<void> {
  const { meta, tmp, final } = download;
  // A CDN that stops sending mid-body would hold every client of the object: the same limit applies
  // to the silence between two chunks.
  stall.arm();
  try {
    for await (const chunk of body as AsyncIterable<Uint8Array>) {
      stall.arm();
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
    await writeFileAtomic(`${final}.json`, JSON.stringify(meta));
    await rename(tmp, final);
    download.done = true;
    opts.log({ level: 'info', msg: `cached ${meta.path} from the CDN (${meta.size} bytes)` });
  } catch (err) {
    download.failed = err instanceof Error ? err : new Error(String(err));
    await out.close().catch(() => {});
    await rm(tmp, { force: true });
    opts.log({ level: 'warn', msg: `CDN fetch of ${meta.path} failed: ${download.failed.message}` });
  }
}

/** A client's view of a download in progress: the temp file, read up to what has been written. */
export function follow(dl: Download): ReadableStream<Uint8Array> {
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
}
