/**
 * The boot URLs' key for a MAC (`52-54-00-…`). It sits with the address arithmetic, not in the renderer,
 * so the DHCP server can build a host's iPXE URL without loading the template engine.
 */
export function macSlug(mac: string): string {
  return mac.toLowerCase().replaceAll(':', '-');
}

export function ipv4ToInt(ip: string): number {
  // A dotted quad of digits, read by a character loop (the DHCP server's relay check runs this on
  // every relayed packet); anything else takes the general path below, as before.
  let acc = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i);
    if (c >= 48 && c <= 57 && digits < 3) {
      part = part * 10 + c - 48;
      digits++;
    } else if (c === 46 && digits > 0 && dots < 3) {
      acc = acc * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else {
      return ipv4ToIntSlow(ip);
    }
  }
  return dots === 3 && digits > 0 ? acc * 256 + part : ipv4ToIntSlow(ip);
}

function ipv4ToIntSlow(ip: string): number {
  return ip.split('.').reduce((acc, part) => acc * 256 + Number.parseInt(part, 10), 0);
}

export function intToIpv4(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
}

export function parseCidr(cidr: string): { network: number; prefix: number; size: number } {
  const [addr = '0.0.0.0', prefixText = '32'] = cidr.split('/');
  const prefix = Number.parseInt(prefixText, 10);
  const size = 2 ** (32 - prefix);
  const network = Math.floor(ipv4ToInt(addr) / size) * size;
  return { network, prefix, size };
}

export function ipInCidr(ip: string, cidr: string): boolean {
  const { network, size } = parseCidr(cidr);
  const n = ipv4ToInt(ip);
  return n >= network && n < network + size;
}

/** The network and broadcast addresses of a subnet, which no host may use (for prefixes up to /30). */
export function isReservedAddress(ip: string, cidr: string): boolean {
  const { network, size, prefix } = parseCidr(cidr);
  if (prefix >= 31) return false;
  const n = ipv4ToInt(ip);
  return n === network || n === network + size - 1;
}

export function netmask(cidr: string): string {
  const { prefix } = parseCidr(cidr);
  return intToIpv4(prefix === 0 ? 0 : 2 ** 32 - 2 ** (32 - prefix));
}
