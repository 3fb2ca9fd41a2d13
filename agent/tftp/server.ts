// Read-only TFTP for the boot network (iPXE binaries) on node:dgram: the request port hands each read
// to a Transfer on its own socket. Our own implementation rather than the `tftp` package: its stream
// layer cost a copy, a stream chunk and timers per 512-byte block (profile in docs/benchmarks.md).
// Nothing in here throws into the socket loop: every fault is logged and costs one transfer at most.
import type { Socket } from 'node:dgram';
import { realpathSync } from 'node:fs';
import type { BootEventSink } from '../../schemas/rollout';
import { ERR, errorPacket, OP, parseRequest, TftpError } from './packets';
import { startPool, type Pool } from './pool';
import { serveRead, udp4, type ReadContext, type ReadRequest, type ReadReport } from './read';
import { FileCache } from '../file-cache';
import type { Transfer, TransferEnd } from './transfer';

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
  /** Retransmission timeout when the client asks none (ms). */
  timeoutMs?: number;
  /**
   * Worker threads serving the transfers (0: all on this thread). Under load, a rack's worth of
   * concurrent transfers finishes sooner spread over threads, as tftpd-hpa's forked processes do.
   */
  workers?: number;
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
interface Shared {
  ctx: ReadContext;
  opts: TftpServerOptions;
  now: () => Date;
  main: Socket;
  pool: Pool | undefined;
  /** Transfers under way by client `address:port`: a retransmitted RRQ does not start a second one. */
  active: Map<string, Transfer | 'starting'>;
}

/** Where a read's refusal and outcome go: the log, the boot events, the request port. */
function reportFor(t: Shared, req: ReadRequest): ReadReport {
  const from = `${req.address}:${req.port}`;
  const file = printable(req.file);
  return {
    refuse(code, text, reason) {
      t.active.delete(from);
      t.opts.log({ level: 'warn', msg: `refused: ${reason}`, from, file });
      t.main.send(errorPacket(code, text), req.port, req.address);
    },
    end(end: TransferEnd) {
      t.active.delete(from);
      if (!end.ok) {
        t.opts.log({ level: 'warn', msg: `transfer failed: ${printable(end.reason ?? '')}`, from, file });
        return;
      }
      t.opts.log({ level: 'info', msg: 'sent', from, file: req.file });
      const at = t.now().toISOString();
      t.opts.events?.emit({ kind: 'tftp', mac: '', detail: `${req.address} ${req.file}`, at });
    },
  };
}

function startRead(t: Shared, req: ReadRequest): void {
  const from = `${req.address}:${req.port}`;
  const report = reportFor(t, req);
  t.active.set(from, 'starting');
  if (t.pool) return t.pool.read(req, report);
  serveRead(t.ctx, req, report).then(
    (transfer) => {
      if (transfer && t.active.get(from) === 'starting') t.active.set(from, transfer);
    },
    (err: unknown) => {
      t.active.delete(from);
      t.opts.log({ level: 'warn', msg: `request failed: ${describe(err)}`, from, file: printable(req.file) });
      t.main.send(errorPacket(ERR.UNDEFINED, 'I/O error'), req.port, req.address);
    },
  );
}

/** One packet to the request port: a read starts, a write or a malformed request gets an error. */
function onRequest(t: Shared, msg: Buffer, address: string, port: number): void {
  const from = `${address}:${port}`;
  const op = msg.length >= 2 ? msg.readUInt16BE(0) : -1;
  // Only requests are answered here; stray DATA/ACK/ERROR/OACK to the request port are dropped.
  if (op !== OP.RRQ && op !== OP.WRQ) return;
  if (t.active.has(from)) return;
  let req;
  try {
    req = parseRequest(msg);
  } catch (err) {
    const e = err instanceof TftpError ? err : new TftpError(ERR.ILLEGAL, describe(err));
    t.main.send(errorPacket(e.code, e.message), port, address);
    return;
  }
  if (req.op === OP.WRQ) {
    t.opts.log({ level: 'warn', msg: 'refused: write request', from, file: printable(req.file) });
    t.main.send(errorPacket(ERR.ACCESS, 'Cannot PUT files'), port, address);
    return;
  }
  if (req.mode !== 'octet' && req.mode !== 'netascii') {
    t.main.send(errorPacket(ERR.ILLEGAL, 'Invalid transfer mode'), port, address);
    return;
  }
  startRead(t, { file: req.file, options: req.options, address, port });
}

export async function startTftpServer(opts: TftpServerOptions): Promise<TftpServer> {
  const ctx: ReadContext = {
    root: realpathSync(opts.root),
    host: opts.host,
    limits: {
      maxBlockSize: opts.maxBlockSize ?? 1468,
      maxWindowSize: opts.maxWindowSize ?? 16,
      defaultTimeoutMs: opts.timeoutMs ?? 1000,
    },
    cache: new FileCache(),
  };
  const main = udp4();
  await new Promise<void>((resolve, reject) => {
    main.once('error', reject);
    main.bind(opts.port, opts.host, () => {
      main.off('error', reject);
      resolve();
    });
  });
  const pool = opts.workers ? startPool(opts.workers, ctx, opts.log) : undefined;
  const shared: Shared = { ctx, opts, now: opts.now ?? (() => new Date()), main, pool, active: new Map() };
  main.on('error', (err: Error) => opts.log({ level: 'warn', msg: `socket error: ${err.message}` }));
  main.on('message', (msg, rinfo) => {
    try {
      onRequest(shared, msg, rinfo.address, rinfo.port);
    } catch (err) {
      opts.log({ level: 'warn', msg: `request handler: ${describe(err)}` });
    }
  });
  const threads = pool ? `, ${opts.workers} worker thread(s)` : '';
  opts.log({ level: 'info', msg: `TFTP on ${opts.host}:${opts.port} serving ${ctx.root}${threads}` });

  return {
    port: main.address().port,
    close: async () => {
      for (const transfer of shared.active.values()) {
        if (transfer !== 'starting') transfer.abort(ERR.UNDEFINED, 'Server shutting down');
      }
      await pool?.close();
      await new Promise<void>((resolve) => main.close(() => resolve()));
    },
  };
}
