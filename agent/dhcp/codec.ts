// DHCPv4 messages (RFC 2131 section 2): the fixed header and the message as a whole; the option area
// is in codec-options.ts. Decoding never throws: whatever arrives on port 67 is untrusted, so every
// fault is a typed result the loop can log.
import {
  END,
  ipAt,
  optionBytes,
  optionLength,
  optionOrder,
  readOptions,
  RELAY_AGENT_INFO,
  readU16,
  writeIpv4,
  writeOption,
  type DecodeError,
} from './codec-options';

export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;
export const MAGIC_COOKIE = 0x63825363;
const HEADER_LENGTH = 236;
const OPTIONS_OFFSET = HEADER_LENGTH + 4;
/** RFC 2131: a client must accept 576-byte messages; BOOTP relays expect at least 300 bytes. */
export const MIN_MESSAGE_SIZE = 576;
const BOOTP_MIN_LENGTH = 300;
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

export type DecodeResult = { ok: true; packet: DhcpPacket } | { ok: false; error: DecodeError; xid?: number };

export const BROADCAST_FLAG = 0x8000;

/** A NUL-terminated header string (sname, file); bytes after the first NUL are padding. */
function cStringAt(buf: Uint8Array, offset: number, length: number): string {
  // Clients leave both fields empty: no copy for them.
  if (buf[offset] === 0) return '';
  const field = buf.subarray(offset, offset + length);
  const nul = field.indexOf(0);
  return Buffer.from(nul < 0 ? field : field.subarray(0, nul)).toString('latin1');
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

function readU32(buf: Uint8Array, offset: number): number {
  return (
    (((buf[offset] ?? 0) << 24) | ((buf[offset + 1] ?? 0) << 16) | (readU16(buf, offset + 2) & 0xffff)) >>> 0
  );
}

function writeHeaderString(out: Buffer, offset: number, length: number, text: string): void {
  if (text === '') return;
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

const EMPTY = new Uint8Array();

/** Room kept for options 53 and 54 (3 + 6 bytes) before option 82 is given its place. */
const TYPE_AND_SERVER_ID = 9;

/**
 * Encodes a packet. Options that do not fit the client's maximum message size are left out, the ones it
 * did not ask for first (optionOrder puts them last). Option 82 goes last and its room is kept first:
 * a relay drops a reply that lost it (RFC 3046 section 2.2).
 */
export function encode(packet: DhcpPacket, opts: EncodeOptions = {}): Buffer {
  const maxSize = Math.max(MIN_MESSAGE_SIZE, opts.maxSize ?? MIN_MESSAGE_SIZE);
  // The IP and UDP headers (28 bytes) count against the client's maximum (RFC 2132 section 9.10).
  let budget = maxSize - 28 - OPTIONS_OFFSET - 1;
  const relayInfo = packet.options.get(RELAY_AGENT_INFO);
  let relayPart = relayInfo && optionBytes(RELAY_AGENT_INFO, relayInfo);
  // An option 82 no relay writes (over 255 bytes, concatenated) must not push out 53 and 54.
  if (relayPart && relayPart.length > budget - TYPE_AND_SERVER_ID) relayPart = undefined;
  budget -= relayPart?.length ?? 0;
  // Measured first, written straight into the message (no per-option buffers).
  const fitting: number[] = [];
  let used = 0;
  for (const code of optionOrder(packet.options, opts.requested ?? [])) {
    const size = optionLength(packet.options.get(code) ?? EMPTY);
    if (used + size > budget) continue;
    fitting.push(code);
    used += size;
  }
  used += relayPart?.length ?? 0;
  const length = Math.max(BOOTP_MIN_LENGTH, OPTIONS_OFFSET + used + 1);
  const out = Buffer.alloc(length);
  out[0] = packet.op;
  out[1] = packet.htype;
  out[2] = packet.hlen;
  out[3] = packet.hops;
  out.writeUInt32BE(packet.xid >>> 0, 4);
  out.writeUInt16BE(packet.secs & 0xffff, 8);
  out.writeUInt16BE(packet.flags & 0xffff, 10);
  writeIpv4(out, 12, packet.ciaddr);
  writeIpv4(out, 16, packet.yiaddr);
  writeIpv4(out, 20, packet.siaddr);
  writeIpv4(out, 24, packet.giaddr);
  out.set(packet.chaddr.subarray(0, 16), 28);
  writeHeaderString(out, 44, 64, packet.sname);
  writeHeaderString(out, 108, 128, packet.file);
  out.writeUInt32BE(MAGIC_COOKIE, HEADER_LENGTH);
  let offset = OPTIONS_OFFSET;
  for (const code of fitting) offset = writeOption(out, offset, code, packet.options.get(code) ?? EMPTY);
  if (relayPart) {
    out.set(relayPart, offset);
    offset += relayPart.length;
  }
  out[offset] = END;
  return out;
}

/** The client's hardware address as lower-case `aa:bb:...` (only the first `hlen` bytes of chaddr). */
export function macOf(packet: DhcpPacket): string {
  let mac = '';
  const n = Math.min(packet.hlen, packet.chaddr.length);
  for (let i = 0; i < n; i++) mac += (i ? ':' : '') + (HEX[packet.chaddr[i] ?? 0] ?? '');
  return mac;
}

const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));
