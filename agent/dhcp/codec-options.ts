// DHCPv4 options (RFC 2132): the option area's wire form, long options split and joined (RFC 3396),
// sub-options, and the typed values the server reads from a request. Reading never throws: a fault
// is a DecodeError, or a value left undefined, that the caller turns into a dropped packet.
export const PAD = 0;
export const END = 255;
/** RFC 3046 Relay Agent Information: the encoder puts it last, after every other option. */
export const RELAY_AGENT_INFO = 82;

export type DecodeError = 'truncated' | 'bad-cookie' | 'option-overrun' | 'bad-length';

interface WithOptions {
  /** Option code to raw value, in wire order; repeated codes are concatenated (RFC 3396). */
  options: ReadonlyMap<number, Uint8Array>;
}

export function ipAt(buf: Uint8Array, offset: number): string {
  return `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`;
}

export function readU16(buf: Uint8Array, offset: number): number {
  return ((buf[offset] ?? 0) << 8) | (buf[offset + 1] ?? 0);
}

export function concat(parts: Uint8Array[]): Uint8Array {
  return Buffer.concat(parts);
}

export function ipv4Bytes(ip: string): Uint8Array {
  const out = new Uint8Array(4);
  writeIpv4(out, 0, ip);
  return out;
}

/**
 * Writes a dotted quad's 4 bytes at `offset`; throws on anything else. A loop over the characters,
 * not split and parseInt: every reply writes four header addresses (it was 8 % of the server's time
 * under load).
 */
export function writeIpv4(out: Uint8Array, offset: number, ip: string): void {
  let part = 0;
  let value = -1;
  for (let i = 0; i <= ip.length; i++) {
    const c = i < ip.length ? ip.charCodeAt(i) : 46;
    if (c === 46 && value >= 0 && value <= 255 && part < 4) {
      out[offset + part++] = value;
      value = -1;
    } else if (c >= 48 && c <= 57 && value < 256) {
      value = (value < 0 ? 0 : value * 10) + c - 48;
    } else {
      throw new Error(`not an IPv4 address: ${ip}`);
    }
  }
  if (part !== 4 || value >= 0) throw new Error(`not an IPv4 address: ${ip}`);
}

/** Reads an option area into `into`; returns an error, or undefined when the area is well formed. */
export function readOptions(
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

/**
 * The order options go on the wire: message type, server id, what the client asked for, the rest.
 * Option 82 is not in it: the encoder appends it last (RFC 3046 section 2.2).
 */
export function optionOrder(
  options: ReadonlyMap<number, Uint8Array>,
  requested: readonly number[],
): number[] {
  const order: number[] = [];
  const placed = new Set<number>([PAD, END, RELAY_AGENT_INFO]);
  // Plain loops, no closure: this runs for every reply.
  for (const list of [FIRST, requested, options.keys()]) {
    for (const code of list) {
      if (placed.has(code) || !options.has(code)) continue;
      placed.add(code);
      order.push(code);
    }
  }
  return order;
}

const FIRST = [53, 54];

/** RFC 3046 section 2.2: a reply carries the request's Relay Agent Information unchanged. */
export function echoRelayAgentInfo(request: WithOptions, replyOptions: Map<number, Uint8Array>): void {
  const info = request.options.get(RELAY_AGENT_INFO);
  if (info) replyOptions.set(RELAY_AGENT_INFO, info);
}

/** One option as it goes on the wire; a value over 255 bytes is split into several instances (RFC 3396). */
export function optionBytes(code: number, value: Uint8Array): Uint8Array {
  const out = new Uint8Array(optionLength(value));
  writeOption(out, 0, code, value);
  return out;
}

/** The wire length of an option with this value (RFC 3396 split included). */
export function optionLength(value: Uint8Array): number {
  return value.length + 2 * Math.max(1, Math.ceil(value.length / 255));
}

/** Writes an option as optionBytes has it at `offset`; returns the offset after it. */
export function writeOption(out: Uint8Array, offset: number, code: number, value: Uint8Array): number {
  let i = 0;
  do {
    const chunk = value.subarray(i, i + 255);
    out[offset] = code;
    out[offset + 1] = chunk.length;
    out.set(chunk, offset + 2);
    offset += 2 + chunk.length;
    i += 255;
  } while (i < value.length);
  return offset;
}

/** Sub-options of an encapsulated option (43 vendor, 175 iPXE, 82 relay); undefined when malformed. */
export function decodeSubOptions(value: Uint8Array): Map<number, Uint8Array> | undefined {
  const out = new Map<number, Uint8Array>();
  return readOptions(value, 0, value.length, out) ? undefined : out;
}

export function encodeSubOptions(subs: ReadonlyMap<number, Uint8Array>): Uint8Array {
  return concat([...subs].map(([code, value]) => concat([Uint8Array.of(code, value.length), value])));
}

export function messageType(packet: WithOptions): number | undefined {
  return packet.options.get(53)?.[0];
}

export function optionIp(packet: WithOptions, code: number): string | undefined {
  const v = packet.options.get(code);
  return v?.length === 4 ? ipAt(v, 0) : undefined;
}

export function optionText(packet: WithOptions, code: number): string | undefined {
  const v = packet.options.get(code);
  return v ? Buffer.from(v).toString('latin1') : undefined;
}

/** Option 57, the largest message the client accepts. */
export function maxMessageSize(packet: WithOptions): number | undefined {
  const v = packet.options.get(57);
  return v?.length === 2 ? readU16(v, 0) : undefined;
}

/** Option 55 as a list of codes. */
export function requestedOptions(packet: WithOptions): number[] {
  return [...(packet.options.get(55) ?? [])];
}

/** Option 93 (RFC 4578): the client's first listed architecture. */
export function clientArch(packet: WithOptions): number | undefined {
  const v = packet.options.get(93);
  return v && v.length >= 2 ? readU16(v, 0) : undefined;
}

/**
 * Option 77. iPXE sends its user class as the bare string "iPXE", not in the RFC 3004 length-prefixed
 * form; both are accepted.
 */
export function userClasses(packet: WithOptions): string[] {
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
