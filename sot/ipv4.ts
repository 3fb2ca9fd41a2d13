/**
 * The boot URLs' key for a MAC (`52-54-00-…`). It sits with the address arithmetic, not in the renderer,
 * so the DHCP server can build a host's iPXE URL without loading the template engine.
 */
export function macSlug(mac: string): string {
  return mac.toLowerCase().replaceAll(':', '-');
}

export function ipv4ToInt(ip: string): number {
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
