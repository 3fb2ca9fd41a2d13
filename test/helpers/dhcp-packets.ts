// DHCP requests for tests: as decoded packets for the pure handlers, and as raw bytes the way firmware
// writes them (options verbatim, for the codec and the fuzzers).
import assert from 'node:assert/strict';
import { BOOTREQUEST, decode, encode, type DhcpPacket, type MessageType } from '../../agent/dhcp/codec';

/** core-01 of test/fixtures/sot-min. */
export const CORE1_MAC = '52:54:00:10:00:01';

export type OptionValue = number[] | string;

export interface RequestSpec {
  type: MessageType;
  /** Options after 53 (the message type), in order. */
  options?: [number, OptionValue][];
  mac?: string;
  ciaddr?: string;
  giaddr?: string;
  flags?: number;
  xid?: number;
}

const macBytes = (mac: string) => Buffer.from(mac.replaceAll(':', ''), 'hex');

/** A client's request as the handlers get it: encoded and decoded again, as off the wire. */
export function dhcpRequest({
  type,
  options = [],
  mac = CORE1_MAC,
  ciaddr = '0.0.0.0',
  giaddr = '0.0.0.0',
  flags = 0,
  xid = 0xcafe,
}: RequestSpec): DhcpPacket {
  const chaddr = new Uint8Array(16);
  chaddr.set(macBytes(mac));
  const packet: DhcpPacket = {
    ...{ op: BOOTREQUEST, htype: 1, hlen: 6, hops: 0, xid, secs: 0, flags, ciaddr, giaddr },
    ...{ yiaddr: '0.0.0.0', siaddr: '0.0.0.0', chaddr, sname: '', file: '' },
    options: new Map([
      [53, Uint8Array.of(type)],
      ...options.map(([code, v]): [number, Uint8Array] => [
        code,
        typeof v === 'string' ? Buffer.from(v, 'latin1') : Uint8Array.from(v),
      ]),
    ]),
  };
  const decoded = decode(encode(packet));
  assert.ok(decoded.ok);
  return decoded.packet;
}

/** One option as bytes: code, length, value. */
export function opt(code: number, value: Buffer | OptionValue): number[] {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'latin1') : Buffer.from(value);
  return [code, bytes.length, ...bytes];
}

export interface RawHeader {
  mac?: string;
  xid?: number;
  secs?: number;
  flags?: number;
  ciaddr?: string;
  giaddr?: string;
}

/** A request header as firmware writes it, with `options` appended verbatim after the cookie (no end). */
export function rawRequest(
  options: number[],
  {
    mac = CORE1_MAC,
    xid = 0x1234abcd,
    secs = 0,
    flags = 0,
    ciaddr = '0.0.0.0',
    giaddr = '0.0.0.0',
  }: RawHeader = {},
): Buffer {
  const header = Buffer.alloc(240);
  header[0] = BOOTREQUEST;
  header[1] = 1;
  header[2] = 6;
  header.writeUInt32BE(xid, 4);
  header.writeUInt16BE(secs, 8);
  header.writeUInt16BE(flags, 10);
  header.set(ciaddr.split('.').map(Number), 12);
  header.set(giaddr.split('.').map(Number), 24);
  macBytes(mac).copy(header, 28);
  header.writeUInt32BE(0x63825363, 236);
  return Buffer.concat([header, Buffer.from(options)]);
}
