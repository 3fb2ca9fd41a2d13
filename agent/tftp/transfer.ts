// One read transfer on its own UDP socket (its TID): OACK if options were asked, then DATA blocks in
// windows (RFC 7440; lock-step is a window of 1), retransmitted on timeout, block numbers rolling over
// past 65535 as tftpd-hpa and iPXE expect. Every outcome ends in exactly one `finish` call.
import type { Socket } from 'node:dgram';
import { ERR, errorPacket, errorText, type Negotiated, OP, oackPacket } from './packets';
import type { Source } from './source';

/** Retransmissions of one window before the transfer is given up. */
const MAX_RETRIES = 5;
/**
 * Without a client-chosen timeout (RFC 2349) the wait doubles after each unanswered retransmission,
 * up to this many times the first: 1, 2, 4, 8, 8 s by default, so a client that stalls for 20 s
 * (firmware busy, a rack powering on at once) is still served, where a fixed 1 s gave up after 6.
 * A lost packet still costs one first timeout.
 */
const MAX_BACKOFF = 8;

export interface TransferEnd {
  ok: boolean;
  /** Why it failed, for the log. */
  reason?: string;
}

export class Transfer {
  /** Highest block acknowledged (absolute, 0 = the OACK's ACK); -1 before it. */
  private acked: number;
  private lastSent: number;
  private readonly lastBlock: number;
  private retries = 0;
  private timer: NodeJS.Timeout | undefined;
  private done = false;
  private readonly oack: Buffer | undefined;

  constructor(
    private readonly socket: Socket,
    private readonly address: string,
    private readonly port: number,
    private readonly source: Source,
    private readonly opts: Negotiated,
    private readonly finish: (end: TransferEnd) => void,
  ) {
    // The last block is short, possibly empty: a file of exactly n blocks ends with an empty one.
    this.lastBlock = Math.floor(source.size / opts.blksize) + 1;
    this.oack = opts.acked.length ? oackPacket(opts.acked) : undefined;
    this.acked = this.oack ? -1 : 0;
    this.lastSent = 0;
    socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo.address, rinfo.port));
    socket.on('error', (err) => this.end({ ok: false, reason: `socket: ${err.message}` }));
  }

  start(): void {
    this.timer = setTimeout(() => this.onTimeout(), this.opts.timeoutMs);
    this.sendWindow();
  }

  /** Ends the transfer, telling the client why unless it ended it itself. */
  abort(code: number, message: string, reason = message): void {
    if (this.done) return;
    this.send(errorPacket(code, message));
    this.end({ ok: false, reason });
  }

  private end(result: TransferEnd): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    this.source.close();
    this.socket.close();
    this.finish(result);
  }

  private send(packet: Buffer | Buffer[]): void {
    this.socket.send(packet, this.port, this.address);
  }

  private onMessage(msg: Buffer, address: string, port: number): void {
    if (this.done) return;
    if (address !== this.address || port !== this.port) {
      // RFC 1350: another TID gets error 5 and the transfer goes on.
      this.socket.send(errorPacket(ERR.UNKNOWN_TID, 'Unknown transfer ID'), port, address);
      return;
    }
    const op = msg.length >= 2 ? msg.readUInt16BE(0) : -1;
    if (op === OP.ACK && msg.length >= 4) return this.onAck(msg.readUInt16BE(2));
    if (op === OP.ERROR) return this.end({ ok: false, reason: `client error ${errorText(msg)}` });
    this.abort(ERR.ILLEGAL, 'Illegal TFTP operation', `malformed packet (${msg.length} bytes)`);
  }

  private onAck(wire: number): void {
    // The one absolute block in (acked, lastSent] with these low 16 bits; anything else is a duplicate
    // (not answered: that is the Sorcerer's Apprentice bug) or from the future.
    const delta = (wire - this.acked) & 0xffff;
    if (delta === 0 || this.acked + delta > this.lastSent) return;
    this.acked += delta;
    const backedOff = this.retries > 0;
    this.retries = 0;
    if (this.acked >= this.lastBlock) return this.end({ ok: true });
    // A window of 1 acked, or a partial window (the client saw a gap): send from the next block on.
    if (this.acked === this.lastSent || this.opts.windowsize > 1) this.sendWindow();
    if (!backedOff) return void this.timer?.refresh();
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.onTimeout(), this.opts.timeoutMs);
  }

  private onTimeout(): void {
    if (this.done) return;
    if (++this.retries > MAX_RETRIES) return this.abort(ERR.UNDEFINED, 'Timed out', 'timed out');
    this.sendWindow();
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.onTimeout(), this.waitMs());
  }

  /** The wait before the next retransmission: the negotiated timeout, or the default backed off. */
  private waitMs(): number {
    const { timeoutMs, clientTimeout } = this.opts;
    if (clientTimeout) return timeoutMs;
    return timeoutMs * Math.min(2 ** this.retries, MAX_BACKOFF);
  }

  /** The OACK while it is unacknowledged, else blocks acked+1 .. acked+windowsize. */
  private sendWindow(): void {
    if (this.acked < 0) {
      if (this.oack) this.send(this.oack);
      return;
    }
    const { blksize, windowsize } = this.opts;
    const first = this.acked + 1;
    const last = Math.min(this.acked + windowsize, this.lastBlock);
    const start = (first - 1) * blksize;
    const end = last * blksize;
    if (!this.source.covers(start, end)) {
      this.source.fill(start, end, (err) => {
        if (this.done) return;
        if (err) return this.abort(ERR.UNDEFINED, 'I/O error', `read: ${err.message}`);
        this.sendBlocks(first, last);
      });
      return;
    }
    this.sendBlocks(first, last);
  }

  private sendBlocks(first: number, last: number): void {
    const { blksize } = this.opts;
    for (let block = first; block <= last; block++) {
      const head = Buffer.allocUnsafe(4);
      head.writeUInt16BE(OP.DATA, 0);
      head.writeUInt16BE(block & 0xffff, 2);
      const offset = (block - 1) * blksize;
      this.send([head, this.source.slice(offset, offset + blksize)]);
    }
    if (last > this.lastSent) this.lastSent = last;
  }
}
