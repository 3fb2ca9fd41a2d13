// The boot interfaces' IPv4 addresses, which the DHCP sockets bind to (see server.ts, `interfaces`).
import { networkInterfaces } from 'node:os';
import { intToIpv4, ipv4ToInt, parseCidr } from '../../sot/ipv4';

export interface BootAddress {
  interface: string;
  address: string;
  /** The interface's network as a CIDR (`10.10.0.0/24`). */
  cidr: string;
}

/** Every IPv4 address of the named interfaces; throws a one-line error for a missing or bare one. */
export function bootAddresses(
  names: readonly string[],
  interfaces: ReturnType<typeof networkInterfaces> = networkInterfaces(),
): BootAddress[] {
  return names.flatMap((name) => {
    const addresses = interfaces[name];
    if (!addresses) throw new Error(`boot interface ${name} does not exist`);
    const v4 = addresses.filter((a) => a.family === 'IPv4' && a.cidr);
    if (v4.length === 0) throw new Error(`boot interface ${name} has no IPv4 address`);
    return v4.map((a) => {
      const { network, prefix } = parseCidr(a.cidr ?? '');
      return { interface: name, address: a.address, cidr: `${intToIpv4(network)}/${prefix}` };
    });
  });
}

/** The boot address whose network holds `ip`, when one does. */
export function onLink(addresses: readonly BootAddress[], ip: string): BootAddress | undefined {
  const n = ipv4ToInt(ip);
  return addresses.find((a) => {
    const { network, size } = parseCidr(a.cidr);
    return n >= network && n < network + size;
  });
}
