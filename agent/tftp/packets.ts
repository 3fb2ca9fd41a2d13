// TFTP packets (RFC 1350) and option negotiation (RFC 2347 OACK, 2348 blksize, 2349 timeout and
// tsize, 7440 windowsize) for the read-only server. Parsing never throws anything but a TftpError.
export const OP = { RRQ: 1, WRQ: 2, DATA: 3, ACK: 4, ERROR: 5, OACK: 6 } as const;

export const ERR = {
  UNDEFINED: 0,
  NOT_FOUND: 1,
  ACCESS: 2,
  ILLEGAL: 4,
  UNKNOWN_TID: 5,
  OPTION: 8,
} as const;

/** A protocol fault: `code` goes to the peer in an ERROR packet, `message` to it and to the log. */
export class TftpError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'TftpError';
  }
}

export interface Request {
  op: number;
  file: string;
  mode: string;
  /** Option names lower-cased; a Map, so a name like `constructor` is only a key. */
  options: Map<string, string>;
}

/** RFC 1350 caps a request at 512 bytes; longer ones are refused before parsing. */
export const MAX_REQUEST = 512;

/** Parses an RRQ or WRQ: opcode, filename, mode, then name/value option pairs, each NUL-terminated. */
export function parseRequest(buf: Buffer): Request {
  if (buf.length < 4 || buf.length > MAX_REQUEST) throw new TftpError(ERR.ILLEGAL, 'malformed request');
  const op = buf.readUInt16BE(0);
  if (op !== OP.RRQ && op !== OP.WRQ) throw new TftpError(ERR.ILLEGAL, 'not a request');
  const fields: string[] = [];
  let start = 2;
  for (let i = 2; i < buf.length; i++) {
    if (buf[i] !== 0) continue;
    fields.push(buf.toString('latin1', start, i));
    start = i + 1;
  }
  if (start !== buf.length) throw new TftpError(ERR.ILLEGAL, 'request not NUL-terminated');
  const [file, mode, ...rest] = fields;
  if (file === undefined || mode === undefined || file.length === 0) {
    throw new TftpError(ERR.ILLEGAL, 'request without filename or mode');
  }
  if (rest.length % 2 !== 0) throw new TftpError(ERR.ILLEGAL, 'option without value');
  const options = new Map<string, string>();
  for (let i = 0; i < rest.length; i += 2) {
    const name = (rest[i] as string).toLowerCase();
    if (!options.has(name)) options.set(name, rest[i + 1] as string);
  }
  return { op, file, mode: mode.toLowerCase(), options };
}

/** A decimal integer in [min, max], or undefined (`1e3`, `0x10`, ` 8` and `1.5` are not). */
function intIn(text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined || !/^[0-9]{1,10}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= min && n <= max ? n : undefined;
}

export interface Negotiated {
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  /** The client asked its timeout (RFC 2349): retransmit at exactly that interval, no backoff. */
  clientTimeout: boolean;
  /** The options acknowledged in the OACK, in the order answered; empty: no OACK, DATA 1 at once. */
  acked: [string, string][];
}

export interface Limits {
  maxBlockSize: number;
  maxWindowSize: number;
  defaultTimeoutMs: number;
}

/** The values used for a transfer; options out of range or unknown are left out of the OACK. */
export function negotiate(options: Map<string, string>, size: number, limits: Limits): Negotiated {
  const out: Negotiated = {
    blksize: 512,
    windowsize: 1,
    timeoutMs: limits.defaultTimeoutMs,
    clientTimeout: false,
    acked: [],
  };
  const blksize = intIn(options.get('blksize'), 8, 65464);
  if (blksize !== undefined) {
    out.blksize = Math.min(blksize, limits.maxBlockSize);
    out.acked.push(['blksize', String(out.blksize)]);
  }
  const timeout = intIn(options.get('timeout'), 1, 255);
  if (timeout !== undefined) {
    out.timeoutMs = timeout * 1000;
    out.clientTimeout = true;
    out.acked.push(['timeout', String(timeout)]);
  }
  if (intIn(options.get('tsize'), 0, 0) !== undefined) out.acked.push(['tsize', String(size)]);
  const windowsize = intIn(options.get('windowsize'), 1, 65535);
  if (windowsize !== undefined) {
    out.windowsize = Math.min(windowsize, limits.maxWindowSize);
    out.acked.push(['windowsize', String(out.windowsize)]);
  }
  return out;
}

export function errorPacket(code: number, message: string): Buffer {
  const text = Buffer.from(message, 'latin1');
  const buf = Buffer.allocUnsafe(5 + text.length);
  buf.writeUInt16BE(OP.ERROR, 0);
  buf.writeUInt16BE(code, 2);
  text.copy(buf, 4);
  buf[buf.length - 1] = 0;
  return buf;
}

export function oackPacket(acked: [string, string][]): Buffer {
  const parts = acked.flatMap(([k, v]) => [Buffer.from(`${k}\0`, 'latin1'), Buffer.from(`${v}\0`, 'latin1')]);
  const head = Buffer.allocUnsafe(2);
  head.writeUInt16BE(OP.OACK, 0);
  return Buffer.concat([head, ...parts]);
}

/** The text of a client's ERROR packet (code and message), at most 512 bytes of it. */
export function errorText(buf: Buffer): string {
  const code = buf.length >= 4 ? buf.readUInt16BE(2) : -1;
  const end = buf.indexOf(0, 4);
  const text = buf.toString('latin1', 4, Math.min(end < 0 ? buf.length : end, 516));
  return `${code} ${text}`;
}
