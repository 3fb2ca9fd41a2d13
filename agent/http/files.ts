import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { ServerResponse } from 'node:http';
import path from 'node:path';
import { pipeline, Readable } from 'node:stream';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { Hono, type Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { RequestIdVariables } from 'hono/request-id';
import { localFilePath, normalizeMac, renderArmed } from './armed';
import { noteRefusal, refusalOf, tokenMatches } from './boot-guard';
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
const CHUNK = 1 << 20;

function body(file: string, range?: ByteRange): ReadableStream {
  return Readable.toWeb(createReadStream(file, { ...range, highWaterMark: CHUNK })) as ReadableStream;
}

/**
 * Under @hono/node-server the file goes from a Node stream straight into the socket, past the web
 * ReadableStream that would cost a promise and a copy per chunk; RESPONSE_ALREADY_SENT tells the
 * adapter the reply is under way (the adapter's documented way). Undefined elsewhere (app.request).
 */
function sendDirect(
  c: Context,
  status: 200 | 206,
  headers: Record<string, string>,
  file: string,
  range?: ByteRange,
) {
  const outgoing = (c.env as { outgoing?: unknown } | undefined)?.outgoing;
  if (!(outgoing instanceof ServerResponse)) return undefined;
  const requestId = c.get('requestId') as string | undefined;
  outgoing.writeHead(status, requestId ? { ...headers, 'X-Request-Id': requestId } : headers);
  // A read error after the headers went out can only cut the connection, which pipeline does.
  pipeline(createReadStream(file, { ...range, highWaterMark: CHUNK }), outgoing, () => undefined);
  return RESPONSE_ALREADY_SENT;
}

/** The status the client got: the one written directly when the adapter was told it was sent. */
export function sentStatus(c: Context): number {
  const outgoing = (c.env as { outgoing?: unknown } | undefined)?.outgoing;
  return c.res === RESPONSE_ALREADY_SENT && outgoing instanceof ServerResponse
    ? outgoing.statusCode
    : c.res.status;
}

async function serveFile(deps: AssetAppDeps, c: Context, file: string, urlPath: string): Promise<Response> {
  const info = await stat(file);
  if (!info.isFile()) throw new HTTPException(404, { message: `${urlPath} is not a file` });
  const etag = `"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
  const headers: Record<string, string> = {
    ETag: etag,
    'Last-Modified': info.mtime.toUTCString(),
    'Accept-Ranges': 'bytes',
    'Content-Type': 'application/octet-stream',
  };
  const ifNoneMatch = c.req.header('If-None-Match');
  if (ifNoneMatch && etagMatches(ifNoneMatch, etag)) return c.body(null, 304, headers);

  const ifRange = c.req.header('If-Range');
  const rangeHeader = ifRange && ifRange !== etag ? undefined : c.req.header('Range');
  const ranges = rangeHeader ? parseRange(rangeHeader, info.size) : undefined;
  if (ranges === 'unsatisfiable')
    return c.body(null, 416, { ...headers, 'Content-Range': `bytes */${info.size}` });
  // Several ranges are answered with the whole file, which RFC 9110 section 14.2 allows.
  const range = ranges?.length === 1 ? ranges[0] : undefined;
  const head = c.req.method === 'HEAD';
  if (!head && (range?.start ?? 0) === 0) await emitFileEvent(deps, c, urlPath);
  if (range) {
    headers['Content-Range'] = `bytes ${range.start}-${range.end}/${info.size}`;
    headers['Content-Length'] = String(range.end - range.start + 1);
    if (head) return c.body(null, 206, headers);
    return sendDirect(c, 206, headers, file, range) ?? c.body(body(file, range), 206, headers);
  }
  headers['Content-Length'] = String(info.size);
  if (head) return c.body(null, 200, headers);
  return sendDirect(c, 200, headers, file) ?? c.body(body(file), 200, headers);
}

/** The file is served either way (boot files are no secret); only its owner's fetch is an event. */
async function emitFileEvent(deps: AssetAppDeps, c: Context, urlPath: string): Promise<void> {
  const owner = await fileOwner(deps, urlPath, { mac: c.req.query('mac'), token: c.req.query('token') });
  if (!owner) return;
  if (owner.refused) {
    const mac = c.req.query('mac') ?? 'unknown';
    noteRefusal(deps, c, { mac, host: 'an armed host' }, owner.refused, `fetch of ${urlPath}`);
    return;
  }
  const reason = refusalOf(deps, c, owner.entry, { token: null });
  if (reason) {
    noteRefusal(deps, c, owner.entry, reason, `fetch of ${urlPath}`);
    return;
  }
  const at = (deps.now?.() ?? new Date()).toISOString();
  deps.events.emit({ kind: owner.kind, mac: owner.entry.mac, stage: owner.entry.stage, at, detail: urlPath });
}

/** Static boot files (kernels, initrds, images) under `filesDir`, with Range, ETag and HEAD. */
export function fileRoutes(deps: AssetAppDeps) {
  const app = new Hono<{ Variables: RequestIdVariables }>();
  app.get('/files/*', async (c) => {
    // The raw path: Hono's c.req.path is already percent-decoded, which would hide `%2e%2e` and `%2f`.
    const urlPath = new URL(c.req.url).pathname;
    const file = await resolveFile(deps.filesDir, urlPath.slice('/files/'.length));
    return serveFile(deps, c, file, urlPath);
  });
  return app;
}
