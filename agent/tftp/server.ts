// Read-only TFTP for the boot network (iPXE binaries), on the `tftp` package patched in
// patches/tftp+0.1.2.patch. Nothing in here throws into the socket loop: every fault is logged and
// costs one transfer at most.
import { createReadStream, realpathSync } from 'node:fs';
import tftp, { type GetStream, type PutStream } from 'tftp';
import type { BootEventSink } from '../../schemas/rollout';
import { resolveFile } from './resolve-file';

export interface TftpLog {
  level: 'info' | 'warn';
  msg: string;
  /** `address:port` of the client. */
  from?: string;
  file?: string;
}

export type TftpLogger = (entry: TftpLog) => void;

export interface TftpServerOptions {
  host: string;
  port: number;
  /** The directory served, e.g. /usr/lib/ipxe (Debian's `ipxe` package). */
  root: string;
  /**
   * Receives one `tftp` event per completed read. TFTP never sees a MAC: the event has `mac: ''` and
   * `detail: '<client ip> <filename>'`; the agent maps the IP to a MAC from its DHCP leases.
   */
  events?: BootEventSink;
  log: TftpLogger;
  /** Upper bounds offered to clients asking for blksize / windowsize (RFC 2348, RFC 7440). */
  maxBlockSize?: number;
  maxWindowSize?: number;
  now?: () => Date;
}

export interface TftpServer {
  port: number;
  close(): Promise<void>;
}

const describe = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * A client's ERROR packet text ends up in `transfer failed: ...`: any host on the boot network chooses
 * those bytes, so control characters (terminal escapes, fake newlines) are escaped and the length capped.
 */
export function printable(text: string, max = 120): string {
  // eslint-disable-next-line no-control-regex
  const escaped = text.replace(/[\x00-\x1f\x7f-\x9f\\]/g, (c) =>
    c === '\\' ? '\\\\' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
  return escaped.length > max ? `${escaped.slice(0, max)}...` : escaped;
}

/** What every transfer of one server shares. */
interface Transfers {
  root: string;
  opts: TftpServerOptions;
  now: () => Date;
  /** Transfers under way, aborted by close(). */
  active: Set<GetStream>;
}

/** Streams the requested file under the root, or refuses it with the TFTP error that fits. */
async function serveFile(t: Transfers, req: GetStream, res: PutStream, from: string): Promise<void> {
  const found = await resolveFile(t.root, req.file);
  if (!found.ok) {
    t.opts.log({ level: 'warn', msg: `refused: ${found.reason}`, from, file: req.file });
    req.abort(found.error === 'access' ? tftp.EACCESS : tftp.ENOENT);
    return;
  }
  const stream = createReadStream(found.path);
  stream.on('error', (err) => {
    t.opts.log({ level: 'warn', msg: `read ${found.path}: ${err.message}`, from, file: req.file });
    req.abort(tftp.EIO);
  });
  // The library forwards transfer errors to `req`; the file stream must not outlive them.
  req.on('close', () => stream.destroy());
  res.setSize(found.size);
  stream.pipe(res);
}

/** One read request: served, logged, and reported as a boot event once the whole file went out. */
function onRequest(t: Transfers, req: GetStream, res: PutStream): void {
  const { opts } = t;
  const from = `${req.stats.remoteAddress}:${req.stats.remotePort}`;
  let failed = false;
  t.active.add(req);
  req.on('error', (err: Error) => {
    failed = true;
    opts.log({ level: 'warn', msg: `transfer failed: ${printable(err.message)}`, from, file: req.file });
  });
  req.on('abort', () => {
    failed = true;
  });
  req.on('close', () => {
    t.active.delete(req);
    // `error` and `abort` follow `close` in the same tick.
    process.nextTick(() => {
      if (failed) return;
      opts.log({ level: 'info', msg: 'sent', from, file: req.file });
      opts.events?.emit({
        kind: 'tftp',
        mac: '',
        detail: `${req.stats.remoteAddress} ${req.file}`,
        at: t.now().toISOString(),
      });
    });
  });
  serveFile(t, req, res, from).catch((err: unknown) => {
    opts.log({ level: 'warn', msg: `request failed: ${describe(err)}`, from, file: req.file });
    req.abort(tftp.EIO);
  });
}

export async function startTftpServer(opts: TftpServerOptions): Promise<TftpServer> {
  const root = realpathSync(opts.root);
  const active = new Set<GetStream>();
  const transfers: Transfers = { root, opts, now: opts.now ?? (() => new Date()), active };

  const server = tftp.createServer(
    {
      host: opts.host,
      port: opts.port,
      root,
      // Refused by the library with an error packet before any transfer starts.
      denyPUT: true,
      blockSize: opts.maxBlockSize ?? 1468,
      windowSize: opts.maxWindowSize ?? 16,
    },
    (req, res) => {
      try {
        onRequest(transfers, req, res);
      } catch (err) {
        opts.log({ level: 'warn', msg: `request handler: ${describe(err)}`, file: req.file });
      }
    },
  );

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.once('listening', () => {
      server.off('error', reject);
      resolve();
    });
    server.listen();
  });
  server.on('error', (err: Error) => opts.log({ level: 'warn', msg: `socket error: ${err.message}` }));
  opts.log({ level: 'info', msg: `TFTP on ${opts.host}:${opts.port} serving ${root}` });

  return {
    port: opts.port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const req of active) req.abort();
        server.once('close', () => resolve());
        server.close();
      }),
  };
}
