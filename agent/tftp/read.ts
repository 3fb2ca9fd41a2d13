// One read request served: the file resolved under the root, its bytes opened (shared from memory for
// boot firmware), a new socket (the transfer's TID) bound and the Transfer started. The same code runs
// on the server's thread and in its worker threads; what it reports goes back through `ReadReport`.
import dgram, { type Socket } from 'node:dgram';
import { lookup as dnsLookup } from 'node:dns';
import { isIP } from 'node:net';
import { ERR, type Limits, negotiate } from './packets';
import { resolveFile } from './resolve-file';
import type { FileCache } from '../file-cache';
import { memorySource, openChunked, type Source } from './source';
import { Transfer, type TransferEnd } from './transfer';

export interface ReadContext {
  /** A real path (no symlinks). */
  root: string;
  host: string;
  limits: Limits;
  cache: FileCache;
}

export interface ReadRequest {
  file: string;
  options: Map<string, string>;
  address: string;
  port: number;
}

export interface ReadReport {
  /** The request is refused before any transfer: the caller sends this error from the request port. */
  refuse(code: number, text: string, reason: string): void;
  end(end: TransferEnd): void;
}

/**
 * dgram resolves the address of every send through dns.lookup, a tick later even for an IP; the
 * addresses here are the IPs packets came from, answered at once.
 */
function lookup(
  host: string,
  _options: unknown,
  cb: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  const family = isIP(host);
  if (family) return cb(null, host, family);
  dnsLookup(host, { family: 4 }, cb);
}

export const udp4 = (): Socket => dgram.createSocket({ type: 'udp4', lookup });

async function openSource(ctx: ReadContext, path: string, size: number, mtimeMs: number): Promise<Source> {
  const whole = ctx.cache.get(path, size, mtimeMs);
  return whole ? memorySource(await whole) : openChunked(path, size);
}

/** Starts the transfer (or refuses it); rejects only on a local fault (open, bind). */
export async function serveRead(
  ctx: ReadContext,
  req: ReadRequest,
  report: ReadReport,
): Promise<Transfer | undefined> {
  const found = await resolveFile(ctx.root, req.file);
  if (!found.ok) {
    const [code, text] =
      found.error === 'access' ? [ERR.ACCESS, 'Access violation'] : [ERR.NOT_FOUND, 'File not found'];
    report.refuse(code, text, found.reason);
    return undefined;
  }
  const source = await openSource(ctx, found.path, found.size, found.mtimeMs);
  const socket = udp4();
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, ctx.host, () => {
      socket.off('error', reject);
      resolve();
    });
  }).catch((err: unknown) => {
    source.close();
    socket.close();
    throw err;
  });
  const opts = negotiate(req.options, found.size, ctx.limits);
  const transfer = new Transfer(socket, req.address, req.port, source, opts, (end) => report.end(end));
  transfer.start();
  return transfer;
}
