import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { RequestIdVariables } from 'hono/request-id';
import { emitBoot, localFilePath, normalizeMac, renderArmed } from './armed';
import { bootRequestOf, noteRefusal, refusalOf, tokenMatches, type BootRequest } from './boot-guard';
import type { AssetAppDeps } from './deps';
import { etagMatches, parseRange, type ByteRange } from './ranges';

/**
 * The file a `/files/...` URL names inside root, or an HTTP error: a `..`, `.`, NUL or backslash
 * segment (also percent-encoded) is 404, a symlink leading out of root 403.
 */
async function resolveFile(root: string, rawPath: string): Promise<string> {
  const segments = rawPath.split('/').filter((s) => s !== '');
  let decoded: string[];
  try {
    decoded = segments.map((s) => decodeURIComponent(s));
  } catch {
    throw new HTTPException(404, { message: 'malformed file path' });
  }
  if (!decoded.length || decoded.some((s) => s === '..' || s === '.' || /[/\\\0]/.test(s)))
    throw new HTTPException(404, { message: `refused file path ${rawPath}` });
  const realRoot = await realpath(root);
  let real: string;
  try {
    real = await realpath(path.join(realRoot, ...decoded));
  } catch {
    throw new HTTPException(404, { message: `no file ${decoded.join('/')}` });
  }
  if (!real.startsWith(realRoot + path.sep))
    throw new HTTPException(403, { message: `${decoded.join('/')} leads out of the files directory` });
  return real;
}

/**
 * The armed host a file request belongs to: the one whose boot token the URL carries (its script
 * hands the kernel and initrd URLs out with it), named by a `?mac=` query or found among the armed.
 */
async function fileOwner(deps: AssetAppDeps, urlPath: string, query: { mac?: string; token?: string }) {
  if (!query.token) return undefined;
  const mac = query.mac === undefined ? undefined : normalizeMac(query.mac);
  const entries = mac
    ? [await deps.netboot.lookup(mac)].filter((e) => e !== undefined)
    : ((await deps.netboot.list?.()) ?? []);
  const entry = entries.find((e) => tokenMatches(e, query.token));
  if (!entry) return { refused: 'bad-token' as const };
  const stage = await renderArmed(deps, entry, entry.stage).catch(() => undefined);
  if (!stage) return undefined;
  if (localFilePath(stage.kernel) === urlPath) return { entry, kind: 'kernel' as const };
  if (stage.initrds.some((u) => localFilePath(u) === urlPath)) return { entry, kind: 'initrd' as const };
  return undefined;
}

/** Big reads: a 50 MB kernel in 50 reads and socket writes rather than 800 of the default 64 KiB. */
export const CHUNK = 1 << 20;

/** A file request as the file route sees it, whichever server parsed it (Hono or listener.ts). */
export interface FileRequest extends BootRequest {
  method: string;
  query(name: string): string | undefined;
  header(name: string): string | undefined;
}

/** The bytes of a file to send: all of it, or one range. */
export interface FileBody {
  file: string;
  size: number;
  mtimeMs: number;
  range?: ByteRange;
}

/** What to answer: status and headers, and the bytes to send (none for HEAD, 304, 416). */
export type FileReply =
  | { status: 200 | 206; headers: Record<string, string>; body: FileBody | undefined }
  | { status: 304 | 416; headers: Record<string, string>; body?: undefined };

/** The answer to a `/files/...` GET or HEAD (Range, ETag); the owner's fetch of its kernel or initrd is an event. */
export async function fileReply(deps: AssetAppDeps, req: FileRequest): Promise<FileReply> {
  const file = await resolveFile(deps.filesDir, req.path.slice('/files/'.length));
  const info = await stat(file);
  if (!info.isFile()) throw new HTTPException(404, { message: `${req.path} is not a file` });
  const etag = `"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
  const headers: Record<string, string> = {
    ETag: etag,
    'Last-Modified': info.mtime.toUTCString(),
    'Accept-Ranges': 'bytes',
    'Content-Type': 'application/octet-stream',
  };
  const ifNoneMatch = req.header('if-none-match');
  if (ifNoneMatch && etagMatches(ifNoneMatch, etag)) return { status: 304, headers };

  const ifRange = req.header('if-range');
  const rangeHeader = ifRange && ifRange !== etag ? undefined : req.header('range');
  const ranges = rangeHeader ? parseRange(rangeHeader, info.size) : undefined;
  if (ranges === 'unsatisfiable')
    return { status: 416, headers: { ...headers, 'Content-Range': `bytes */${info.size}` } };
  // Several ranges are answered with the whole file, which RFC 9110 section 14.2 allows.
  const range = ranges?.length === 1 ? ranges[0] : undefined;
  const head = req.method === 'HEAD';
  if (!head && (range?.start ?? 0) === 0) await emitFileEvent(deps, req);
  const body = head ? undefined : { file, size: info.size, mtimeMs: info.mtimeMs, range };
  if (range) {
    headers['Content-Range'] = `bytes ${range.start}-${range.end}/${info.size}`;
    headers['Content-Length'] = String(range.end - range.start + 1);
    return { status: 206, headers, body };
  }
  headers['Content-Length'] = String(info.size);
  return { status: 200, headers, body };
}

/** The file is served either way (boot files are no secret); only its owner's fetch is an event. */
async function emitFileEvent(deps: AssetAppDeps, req: FileRequest): Promise<void> {
  const urlPath = req.path;
  const owner = await fileOwner(deps, urlPath, { mac: req.query('mac'), token: req.query('token') });
  if (!owner) return;
  if (owner.refused) {
    const mac = req.query('mac') ?? 'unknown';
    noteRefusal(deps, req, { mac, host: 'an armed host' }, owner.refused, `fetch of ${urlPath}`);
    return;
  }
  const reason = refusalOf(deps, req, owner.entry, { token: null });
  if (reason) {
    noteRefusal(deps, req, owner.entry, reason, `fetch of ${urlPath}`);
    return;
  }
  emitBoot(deps, owner.kind, owner.entry.mac, owner.entry.stage, urlPath);
}

/** Static boot files under `filesDir`, with Range, ETag and HEAD (the direct listener serves most). */
export function fileRoutes(deps: AssetAppDeps) {
  const app = new Hono<{ Variables: RequestIdVariables }>();
  app.get('/files/*', async (c) => {
    // The raw path: Hono's c.req.path is already percent-decoded, which would hide `%2e%2e` and `%2f`.
    const reply = await fileReply(deps, {
      ...bootRequestOf(c),
      method: c.req.method,
      query: (name) => c.req.query(name),
      header: (name) => c.req.header(name),
    });
    if (!reply.body) return c.body(null, reply.status, reply.headers);
    const stream = createReadStream(reply.body.file, { ...reply.body.range, highWaterMark: CHUNK });
    return c.body(Readable.toWeb(stream) as ReadableStream, reply.status, reply.headers);
  });
  return app;
}
