// The asset server's node:http listener. What every booting host fetches (the chain script, its
// /ipxe/<mac> script, kernel and initrd under /files/) is answered here straight from node:http; the
// rest, and any request of those paths this file does not take (HEAD of a script, a percent-encoded
// or dot-segment file path), goes to the Hono app. Both call the same code (scripts.ts, files.ts);
// only the transport differs: building a web Request and Response per request was most of a
// script's cost (docs/benchmarks.md, issue 16).
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream';
import { getRequestListener } from '@hono/node-server';
import { FileCache, type FileCacheLimits, type Lease } from '../file-cache';
import { createAssetApp, errorReply } from './app';
import { loggedPath, socketAddress } from './boot-guard';
import type { AssetAppDeps } from './deps';
import { CHUNK, fileReply, type FileBody, type FileReply } from './files';
import { chainScript, hostScript } from './scripts';

/** A MAC as normalizeMac takes it, nothing percent-encoded (Hono would decode that first). */
const IPXE_PATH = /^\/ipxe\/[0-9a-fA-F]{2}(?:[-:][0-9a-fA-F]{2}){5}$/;
/** A file path the URL parser leaves as it is: no dot segment, no percent-encoding, no backslash. */
const UNCLEAN_FILE_PATH = /[^\w.~!$&'()*+,;=:@/-]|\/\./;
/** Hono's request-id middleware takes a client's id of this form, and makes one otherwise. */
const REQUEST_ID = /^[\w\-=]{1,255}$/;

/**
 * Kernels and initrds are kept in memory up to these sizes (a rack fetches the same ones at once):
 * one write from a shared buffer per connection instead of a read and a copy per chunk. Bigger
 * files (disk images) are streamed from disk.
 */
export const HTTP_FILE_CACHE: FileCacheLimits = { fileMax: 128 << 20, budget: 512 << 20 };

export interface AssetListenerOptions {
  /** The Hono app for every other request (createAssetApp(deps) if not given). */
  app?: ReturnType<typeof createAssetApp>;
  fileCache?: FileCacheLimits;
}

/** The request listener of the agent's HTTP boot server (for `http.createServer`). */
export function assetListener(deps: AssetAppDeps, opts: AssetListenerOptions = {}): RequestListener {
  const hono = getRequestListener((opts.app ?? createAssetApp(deps)).fetch);
  const cache = new FileCache(opts.fileCache ?? HTTP_FILE_CACHE);

  /** Answers with `handle`'s reply, or its error as the app would; logs the request as the app does. */
  const direct = (
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    handle: (reqId: string) => Promise<() => number>,
  ) => {
    const started = performance.now();
    const header = req.headers['x-request-id'];
    const reqId = typeof header === 'string' && REQUEST_ID.test(header) ? header : randomUUID();
    handle(reqId)
      .then(
        (send) => send(),
        (err: Error) => {
          const { status, text } = errorReply(deps, err, reqId, path);
          return sendText(res, status, text, reqId);
        },
      )
      .then(
        (status) =>
          deps.log({
            level: status >= 500 ? 'error' : 'info',
            msg: `${req.method} ${loggedPath(path)} ${status}`,
            reqId,
            ms: Math.round(performance.now() - started),
          }),
        // Only a failure to write the answer gets here (the connection went away meanwhile).
        (err: Error) => {
          deps.log({ level: 'warn', msg: `answer not sent: ${err.message}`, reqId, path: loggedPath(path) });
          res.destroy();
        },
      );
  };

  return (req, res) => {
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const remote = socketAddress(req);
    if (req.method === 'GET' && IPXE_PATH.test(path)) {
      direct(req, res, path, async (reqId) => {
        const script = await hostScript(deps, { remote, path, reqId }, path.slice('/ipxe/'.length));
        return () => sendText(res, 200, script, reqId);
      });
      return;
    }
    if (req.method === 'GET' && path === '/boot.ipxe' && req.headers.host) {
      const origin = originOf(req.headers.host);
      if (origin) {
        // In a promise: a throw (no model yet) becomes the app's 500, not an exception here.
        direct(req, res, path, (reqId) =>
          Promise.resolve().then(() => {
            const script = chainScript(deps, remote, origin);
            return () => sendText(res, 200, script, reqId);
          }),
        );
        return;
      }
    }
    if (
      (req.method === 'GET' || req.method === 'HEAD') &&
      path.startsWith('/files/') &&
      !UNCLEAN_FILE_PATH.test(path)
    ) {
      const query = q < 0 ? undefined : new URLSearchParams(url.slice(q + 1));
      direct(req, res, path, async (reqId) => {
        const reply = await fileReply(deps, {
          method: req.method ?? 'GET',
          path,
          remote,
          query: (name) => query?.get(name) ?? undefined,
          header: (name) => headerOf(req, name),
        });
        const lease =
          reply.body &&
          cache.acquire(reply.body.file, reply.body.size, reply.body.mtimeMs, !!reply.body.range);
        // Released when the response closes; at once if the client went away while the reply was made
        // (its 'close' has been emitted already).
        if (lease && (res.destroyed || !res.socket || res.socket.destroyed)) lease.release();
        else if (lease) res.once('close', lease.release);
        const data = reply.body && lease && (await bytesOf(lease, reply.body));
        return () => sendFile(res, reply, data, reqId);
      });
      return;
    }
    void hono(req, res);
  };
}

/** The origin of a Host header as the URL parser makes it (Hono's `new URL(c.req.url).origin`). */
function originOf(host: string): string | undefined {
  try {
    return new URL(`http://${host}`).origin;
  } catch {
    return undefined;
  }
}

function headerOf(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

function sendText(res: ServerResponse, status: number, text: string, reqId: string): number {
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=UTF-8',
    'Content-Length': Buffer.byteLength(text),
    'X-Request-Id': reqId,
  });
  res.end(text);
  return status;
}

/**
 * The file's bytes from the cache (the lease is held until the response closes, so a slow client
 * keeps its buffer counted); undefined (streamed) when the read failed or the file changed meanwhile.
 */
async function bytesOf(lease: Lease, body: FileBody): Promise<Buffer | undefined> {
  const whole = await lease.data.catch(() => undefined);
  if (!whole || !body.range) return whole;
  return whole.subarray(body.range.start, body.range.end + 1);
}

function sendFile(res: ServerResponse, reply: FileReply, data: Buffer | undefined, reqId: string): number {
  res.writeHead(reply.status, { ...reply.headers, 'X-Request-Id': reqId });
  const { body } = reply;
  if (!body) res.end();
  else if (data) res.end(data);
  // A read error after the headers went out can only cut the connection, which pipeline does.
  else pipeline(createReadStream(body.file, { ...body.range, highWaterMark: CHUNK }), res, () => undefined);
  return reply.status;
}
