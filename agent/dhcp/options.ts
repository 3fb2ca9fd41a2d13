// Option values built from the model: typed custom options, RFC 3397 domain search, RFC 3442 routes.
import type { DhcpOption } from '../../schemas/site';
import { concat, ipv4Bytes } from './codec-options';

export function u8(n: number): Uint8Array {
  return Uint8Array.of(n & 0xff);
}

export function u16(n: number): Uint8Array {
  return Uint8Array.of((n >>> 8) & 0xff, n & 0xff);
}

export function u32(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n >>> 0);
  return out;
}

export function text(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'utf8'));
}

export function ipList(ips: readonly string[]): Uint8Array {
  return concat(ips.map(ipv4Bytes));
}

function asList(value: DhcpOption['value']): string[] {
  if (Array.isArray(value)) return value;
  return String(value)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** A custom option from the model as bytes (the schema checked the type; the value is coerced here). */
export function customOptionBytes(option: DhcpOption): Uint8Array {
  const { type, value } = option;
  switch (type) {
    case 'string':
      return text(String(value));
    case 'ipv4':
      return ipv4Bytes(String(value));
    case 'ipv4-list':
      return ipList(asList(value));
    case 'uint8':
      return u8(Number(value));
    case 'uint16':
      return u16(Number(value));
    case 'uint32':
      return u32(Number(value));
    case 'bool':
      return u8(value === true || value === 'true' || value === 1 ? 1 : 0);
    case 'hex':
      return new Uint8Array(Buffer.from(String(value).replace(/[^0-9a-fA-F]/g, ''), 'hex'));
  }
}

/**
 * RFC 3397: domain names in DNS wire format (RFC 1035 section 3.1), later names pointing back at
 * suffixes already written (section 4.1.4 compression, offsets from the start of the option).
 */
export function domainSearch(domains: readonly string[]): Uint8Array {
  const bytes: number[] = [];
  const suffixes = new Map<string, number>();
  for (const domain of domains) {
    const labels = domain.replace(/\.$/, '').split('.').filter(Boolean);
    let i = 0;
    for (; i < labels.length; i++) {
      const suffix = labels.slice(i).join('.').toLowerCase();
      const at = suffixes.get(suffix);
      if (at !== undefined) {
        bytes.push(0xc0 | (at >> 8), at & 0xff);
        break;
      }
      if (bytes.length < 0x3fff) suffixes.set(suffix, bytes.length);
      const label = Buffer.from(labels[i] ?? '', 'utf8').subarray(0, 63);
      bytes.push(label.length, ...label);
    }
    if (i === labels.length) bytes.push(0);
  }
  return Uint8Array.from(bytes);
}

export interface Route {
  /** Destination as a CIDR, `0.0.0.0/0` for the default route. */
  destination: string;
  gateway: string;
}

/** RFC 3442 classless static routes: prefix length, the significant octets of the destination, router. */
export function classlessRoutes(routes: readonly Route[]): Uint8Array {
  return concat(
    routes.map(({ destination, gateway }) => {
      const [addr = '0.0.0.0', prefixText = '32'] = destination.split('/');
      const prefix = Number.parseInt(prefixText, 10);
      const significant = ipv4Bytes(addr).subarray(0, Math.ceil(prefix / 8));
      return concat([u8(prefix), significant, ipv4Bytes(gateway)]);
    }),
  );
}
