// Read-only TFTP for the boot network (iPXE binaries) on node:dgram: the request port hands each read
// to a Transfer on its own socket. Our own implementation rather than the `tftp` package: its stream
// layer cost a copy, a stream chunk and timers per 512-byte block (profile in docs/benchmarks.md).
// Nothing in here throws into the socket loop: every fault is logged and costs one transfer at most.
import dgram, { type Socket } from 'node:dgram';
import { lookup as dnsLookup } from 'node:dns';
import { realpathSync } from 'node:fs';
import { isIP } from 'node:net';
import type { BootEventSink } from '../../schemas/rollout';
import { ERR, errorPacket, type Limits, negotiate, OP, parseRequest, TftpError } from './packets';
import { resolveFile } from './resolve-file';
import { FileCache, memorySource, openChunked, type Source } from './source';
import { Transfer, type TransferEnd } from './transfer';

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
  root: string;
  host: string;
  opts: TftpServerOptions;
  limits: Limits;
  now: () => Date;
  cache: FileCache;
  /** Transfers under way by client `address:port`: a retransmitted RRQ does not start a second one. */
  active: Map<string, Transfer | 'starting'>;
}

/**
 * dgram resolves the address of every send through dns.lookup, a tick later even for an IP; the
 * addresses here are the IPs packets came from, answered at once.
 */
function lookup(
  host: string,
  options: unknown,
  cb: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  const family = isIP(host);
  if (family) return cb(null, host, family);
  dnsLookup(host, { family: 4 }, cb);
}

const udp4 = (): Socket => dgram.createSocket({ type: 'udp4', lookup });

async function openSource(t: Shared, path: string, size: number, mtimeMs: number): Promise<Source> {
  const whole = t.cache.get(path, size, mtimeMs);
  return whole ? memorySource(await whole) : openChunked(path, size);
}

/** Resolves the file and starts its transfer on a new socket; ends in `finished` or an error packet. */
async function startRead(
  t: Shared,
  main: Socket,
  file: string,
  opts: Map<string, string>,
  address: string,
  port: number,
) {
  const from = `${address}:${port}`;
  const found = await resolveFile(t.root, file);
  if (!found.ok) {
    t.active.delete(from);
    t.opts.log({ level: 'warn', msg: `refused: ${found.reason}`, from, file: printable(file) });
    const [code, text] =
      found.error === 'access' ? [ERR.ACCESS, 'Access violation'] : [ERR.NOT_FOUND, 'File not found'];
    main.send(errorPacket(code, text), port, address);
    return;
  }
  const source = await openSource(t, found.path, found.size, found.mtimeMs);
  const socket = udp4();
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, t.host, () => {
      socket.off('error', reject);
      resolve();
    });
  }).catch((err: unknown) => {
    source.close();
    socket.close();
    throw err;
  });
  const finished = (end: TransferEnd) => {
    t.active.delete(from);
    if (!end.ok) {
      t.opts.log({
        level: 'warn',
        msg: `transfer failed: ${printable(end.reason ?? '')}`,
        from,
        file: printable(file),
      });
      return;
    }
    t.opts.log({ level: 'info', msg: 'sent', from, file });
    t.opts.events?.emit({ kind: 'tftp', mac: '', detail: `${address} ${file}`, at: t.now().toISOString() });
  };
  const transfer = new Transfer(
    socket,
    address,
    port,
    source,
    negotiate(opts, found.size, t.limits),
    finished,
  );
  t.active.set(from, transfer);
  transfer.start();
}

/** One packet to the request port: a read starts, a write or a malformed request gets an error. */
function onRequest(t: Shared, main: Socket, msg: Buffer, address: string, port: number): void {
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
    main.send(errorPacket(e.code, e.message), port, address);
    return;
  }
  if (req.op === OP.WRQ) {
    t.opts.log({ level: 'warn', msg: 'refused: write request', from, file: printable(req.file) });
    main.send(errorPacket(ERR.ACCESS, 'Cannot PUT files'), port, address);
    return;
  }
  if (req.mode !== 'octet' && req.mode !== 'netascii') {
    main.send(errorPacket(ERR.ILLEGAL, 'Invalid transfer mode'), port, address);
    return;
  }
  t.active.set(from, 'starting');
  startRead(t, main, req.file, req.options, address, port).catch((err: unknown) => {
    t.active.delete(from);
    t.opts.log({ level: 'warn', msg: `request failed: ${describe(err)}`, from, file: printable(req.file) });
    main.send(errorPacket(ERR.UNDEFINED, 'I/O error'), port, address);
  });
}

export async function startTftpServer(opts: TftpServerOptions): Promise<TftpServer> {
  const shared: Shared = {
    root: realpathSync(opts.root),
    host: opts.host,
    opts,
    limits: {
      maxBlockSize: opts.maxBlockSize ?? 1468,
      maxWindowSize: opts.maxWindowSize ?? 16,
      defaultTimeoutMs: opts.timeoutMs ?? 1000,
    },
    now: opts.now ?? (() => new Date()),
    cache: new FileCache(),
    active: new Map(),
  };
  const main = udp4();
  await new Promise<void>((resolve, reject) => {
    main.once('error', reject);
    main.bind(opts.port, opts.host, () => {
      main.off('error', reject);
      resolve();
    });
  });
  main.on('error', (err: Error) => opts.log({ level: 'warn', msg: `socket error: ${err.message}` }));
  main.on('message', (msg, rinfo) => {
    try {
      onRequest(shared, main, msg, rinfo.address, rinfo.port);
    } catch (err) {
      opts.log({ level: 'warn', msg: `request handler: ${describe(err)}` });
    }
  });
  opts.log({ level: 'info', msg: `TFTP on ${opts.host}:${opts.port} serving ${shared.root}` });

  return {
    port: main.address().port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const transfer of shared.active.values()) {
          if (transfer !== 'starting') transfer.abort(ERR.UNDEFINED, 'Server shutting down');
        }
        main.close(() => resolve());
      }),
  };
}
