// DHCPv4 wire format (RFC 2131 section 2, RFC 2132, RFC 3396 long options). Decoding never throws:
// whatever arrives on port 67 is untrusted, so every fault is a typed result the loop can log.

export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;
export const MAGIC_COOKIE = 0x63825363;
const HEADER_LENGTH = 236;
const OPTIONS_OFFSET = HEADER_LENGTH + 4;
/** RFC 2131: a client must accept 576-byte messages; BOOTP relays expect at least 300 bytes. */
export const MIN_MESSAGE_SIZE = 576;
const BOOTP_MIN_LENGTH = 300;
const PAD = 0;
const END = 255;
const OVERLOAD = 52;

export enum MessageType {
  Discover = 1,
  Offer = 2,
  Request = 3,
  Decline = 4,
  Ack = 5,
  Nak = 6,
  Release = 7,
  Inform = 8,
}

export interface DhcpPacket {
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  flags: number;
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  /** The full 16-byte field; the hardware address is its first `hlen` bytes. */
  chaddr: Uint8Array;
  sname: string;
  file: string;
  /** Option code to raw value, in wire order; repeated codes are concatenated (RFC 3396). */
  options: Map<number, Uint8Array>;
}

export type DecodeError = 'truncated' | 'bad-cookie' | 'option-overrun' | 'bad-length';
export type DecodeResult = { ok: true; packet: DhcpPacket } | { ok: false; error: DecodeError; xid?: number };

export const BROADCAST_FLAG = 0x8000;

function ipAt(buf: Uint8Array, offset: number): string {
  return `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`;
}

/** A NUL-terminated header string (sname, file); bytes after the first NUL are padding. */
function cStringAt(buf: Uint8Array, offset: number, length: number): string {
  const field = buf.subarray(offset, offset + length);
  const nul = field.indexOf(0);
  return Buffer.from(nul < 0 ? field : field.subarray(0, nul)).toString('latin1');
}

/** Reads an option area into `into`; returns an error, or undefined when the area is well formed. */
function readOptions(
  buf: Uint8Array,
  start: number,
  end: number,
  into: Map<number, Uint8Array>,
): DecodeError | undefined {
  let i = start;
  while (i < end) {
    const code = buf[i++] ?? END;
    if (code === PAD) continue;
    if (code === END) return undefined;
    if (i >= end) return 'option-overrun';
    const len = buf[i++] ?? 0;
    if (i + len > end) return 'option-overrun';
    const value = buf.slice(i, i + len);
    const prev = into.get(code);
    into.set(code, prev ? concat([prev, value]) : value);
    i += len;
  }
  // A missing END is common in the wild (some relays strip it); the options read so far are kept.
  return undefined;
}

export function decode(input: Uint8Array): DecodeResult {
  if (input.length < OPTIONS_OFFSET) {
    return input.length >= 8
      ? { ok: false, error: 'truncated', xid: readU32(input, 4) }
      : { ok: false, error: 'truncated' };
  }
  const buf = input;
  const xid = readU32(buf, 4);
  if (readU32(buf, HEADER_LENGTH) !== MAGIC_COOKIE) return { ok: false, error: 'bad-cookie', xid };
  const hlen = buf[2] ?? 0;
  if (hlen > 16) return { ok: false, error: 'bad-length', xid };
  const options = new Map<number, Uint8Array>();
  const err = readOptions(buf, OPTIONS_OFFSET, buf.length, options);
  if (err) return { ok: false, error: err, xid };
  const overload = options.get(OVERLOAD);
  let file = cStringAt(buf, 108, 128);
  let sname = cStringAt(buf, 44, 64);
  if (overload) {
    if (overload.length !== 1) return { ok: false, error: 'bad-length', xid };
    const mode = overload[0] ?? 0;
    // RFC 2131 section 4.1: the file field is read before sname.
    if (mode & 1) {
      const e = readOptions(buf, 108, 236, options);
      if (e) return { ok: false, error: e, xid };
      file = '';
    }
    if (mode & 2) {
      const e = readOptions(buf, 44, 108, options);
      if (e) return { ok: false, error: e, xid };
      sname = '';
    }
  }
  const type = options.get(53);
  if (type && type.length !== 1) return { ok: false, error: 'bad-length', xid };
  const maxSize = options.get(57);
  if (maxSize && maxSize.length !== 2) return { ok: false, error: 'bad-length', xid };
  return {
    ok: true,
    packet: {
      op: buf[0] ?? 0,
      htype: buf[1] ?? 0,
      hlen,
      hops: buf[3] ?? 0,
      xid,
      secs: readU16(buf, 8),
      flags: readU16(buf, 10),
      ciaddr: ipAt(buf, 12),
      yiaddr: ipAt(buf, 16),
      siaddr: ipAt(buf, 20),
      giaddr: ipAt(buf, 24),
      chaddr: buf.slice(28, 44),
      sname,
      file,
      options,
    },
  };
}

function readU16(buf: Uint8Array, offset: number): number {
  return ((buf[offset] ?? 0) << 8) | (buf[offset + 1] ?? 0);
}

function readU32(buf: Uint8Array, offset: number): number {
  return (
    (((buf[offset] ?? 0) << 24) | ((buf[offset + 1] ?? 0) << 16) | (readU16(buf, offset + 2) & 0xffff)) >>> 0
  );
}

export function concat(parts: Uint8Array[]): Uint8Array {
  return Buffer.concat(parts);
}

export function ipv4Bytes(ip: string): Uint8Array {
  const parts = ip.split('.').map((p) => Number.parseInt(p, 10));
  if (parts.length !== 4 || parts.some((p) => !(p >= 0 && p <= 255)))
    throw new Error(`not an IPv4 address: ${ip}`);
  return Uint8Array.from(parts);
}

function writeHeaderString(out: Buffer, offset: number, length: number, text: string): void {
  const bytes = Buffer.from(text, 'latin1');
  if (bytes.length >= length) throw new Error(`header field too long (${bytes.length} >= ${length})`);
  bytes.copy(out, offset);
}

export interface EncodeOptions {
  /** The largest DHCP message the client accepts (option 57 of its request); at least 576. */
  maxSize?: number;
  /** Codes the client asked for (option 55), in its order: they are placed first, after 53 and 54. */
  requested?: readonly number[];
}

/** The order options go on the wire: message type, server id, what the client asked for, the rest. */
function optionOrder(options: Map<number, Uint8Array>, requested: readonly number[]): number[] {
  const order: number[] = [];
  for (const code of [53, 54, ...requested, ...options.keys()]) {
    if (options.has(code) && !order.includes(code) && code !== PAD && code !== END) order.push(code);
  }
  return order;
}

/** One option as it goes on the wire; a value over 255 bytes is split into several instances (RFC 3396). */
function optionBytes(code: number, value: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [];
  let i = 0;
  do {
    const chunk = value.subarray(i, i + 255);
    parts.push(Uint8Array.of(code, chunk.length), chunk);
    i += 255;
  } while (i < value.length);
  return concat(parts);
}

/**
 * Encodes a packet. Options that do not fit the client's maximum message size are left out, the ones it
 * did not ask for first (the fixed order above puts them last).
 */
export function encode(packet: DhcpPacket, opts: EncodeOptions = {}): Buffer {
  const maxSize = Math.max(MIN_MESSAGE_SIZE, opts.maxSize ?? MIN_MESSAGE_SIZE);
  // The IP and UDP headers (28 bytes) count against the client's maximum (RFC 2132 section 9.10).
  const budget = maxSize - 28 - OPTIONS_OFFSET - 1;
  const optionParts: Uint8Array[] = [];
  let used = 0;
  for (const code of optionOrder(packet.options, opts.requested ?? [])) {
    const bytes = optionBytes(code, packet.options.get(code) ?? new Uint8Array());
    if (used + bytes.length > budget) continue;
    optionParts.push(bytes);
    used += bytes.length;
  }
  const length = Math.max(BOOTP_MIN_LENGTH, OPTIONS_OFFSET + used + 1);
  const out = Buffer.alloc(length);
  out[0] = packet.op;
  out[1] = packet.htype;
  out[2] = packet.hlen;
  out[3] = packet.hops;
  out.writeUInt32BE(packet.xid >>> 0, 4);
  out.writeUInt16BE(packet.secs & 0xffff, 8);
  out.writeUInt16BE(packet.flags & 0xffff, 10);
  out.set(ipv4Bytes(packet.ciaddr), 12);
  out.set(ipv4Bytes(packet.yiaddr), 16);
  out.set(ipv4Bytes(packet.siaddr), 20);
  out.set(ipv4Bytes(packet.giaddr), 24);
  out.set(packet.chaddr.subarray(0, 16), 28);
  writeHeaderString(out, 44, 64, packet.sname);
  writeHeaderString(out, 108, 128, packet.file);
  out.writeUInt32BE(MAGIC_COOKIE, HEADER_LENGTH);
  let offset = OPTIONS_OFFSET;
  for (const part of optionParts) {
    out.set(part, offset);
    offset += part.length;
  }
  out[offset] = END;
  return out;
}

/** Sub-options of an encapsulated option (43 vendor, 175 iPXE, 82 relay); undefined when malformed. */
export function decodeSubOptions(value: Uint8Array): Map<number, Uint8Array> | undefined {
  const out = new Map<number, Uint8Array>();
  return readOptions(value, 0, value.length, out) ? undefined : out;
}

export function encodeSubOptions(subs: ReadonlyMap<number, Uint8Array>): Uint8Array {
  return concat([...subs].map(([code, value]) => concat([Uint8Array.of(code, value.length), value])));
}

/** The client's hardware address as lower-case `aa:bb:...` (only the first `hlen` bytes of chaddr). */
export function macOf(packet: DhcpPacket): string {
  return [...packet.chaddr.subarray(0, packet.hlen)].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

export function messageType(packet: DhcpPacket): number | undefined {
  return packet.options.get(53)?.[0];
}

export function optionIp(packet: DhcpPacket, code: number): string | undefined {
  const v = packet.options.get(code);
  return v?.length === 4 ? ipAt(v, 0) : undefined;
}

export function optionText(packet: DhcpPacket, code: number): string | undefined {
  const v = packet.options.get(code);
  return v ? Buffer.from(v).toString('latin1') : undefined;
}

/** Option 57, the largest message the client accepts. */
export function maxMessageSize(packet: DhcpPacket): number | undefined {
  const v = packet.options.get(57);
  return v?.length === 2 ? readU16(v, 0) : undefined;
}

/** Option 55 as a list of codes. */
export function requestedOptions(packet: DhcpPacket): number[] {
  return [...(packet.options.get(55) ?? [])];
}

/** Option 93 (RFC 4578): the client's first listed architecture. */
export function clientArch(packet: DhcpPacket): number | undefined {
  const v = packet.options.get(93);
  return v && v.length >= 2 ? readU16(v, 0) : undefined;
}

/**
 * Option 77. iPXE sends its user class as the bare string "iPXE", not in the RFC 3004 length-prefixed
 * form; both are accepted.
 */
export function userClasses(packet: DhcpPacket): string[] {
  const v = packet.options.get(77);
  if (!v || v.length === 0) return [];
  const classes: string[] = [];
  let i = 0;
  while (i < v.length) {
    const len = v[i] ?? 0;
    if (len === 0 || i + 1 + len > v.length) return [Buffer.from(v).toString('latin1')];
    classes.push(Buffer.from(v.subarray(i + 1, i + 1 + len)).toString('latin1'));
    i += 1 + len;
  }
  return classes;
}
