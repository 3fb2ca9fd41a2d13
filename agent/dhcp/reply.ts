// The options of an OFFER or ACK for a known host (RFC 2132; RFC 4578 for PXE clients).
import { netmask, parseCidr, intToIpv4 } from '../../sot/ipv4';
import type { DhcpPacket } from './codec';
import { clientArch, encodeSubOptions, ipv4Bytes, userClasses } from './codec-options';
import type { HostLease } from './leases';
import { customOptionBytes, domainSearch, ipList, text, u16, u32, u8 } from './options';

export const ARCH_BIOS = 0;
export const ARCH_EFI_X64 = 7;
export const ARCH_EFI_BC = 9;
export const ARCH_EFI_X64_HTTP = 16;

export interface BootChoice {
  /** Boot file name (TFTP-relative) or URL; undefined for a client that is not network booting. */
  file?: string;
  /** Option 60 to echo: PXE ROMs ignore an offer without "PXEClient" (HTTP boot: "HTTPClient"). */
  vendorClass?: string;
  ipxe: boolean;
}

export function isIpxe(packet: DhcpPacket): boolean {
  return userClasses(packet).includes('iPXE');
}

/** The boot file for the client: iPXE gets its script, firmware gets an iPXE binary for its arch. */
export function chooseBoot(packet: DhcpPacket, lease: HostLease): BootChoice {
  const arch = clientArch(packet);
  const vendor = packet.options.get(60);
  const vendorText = vendor ? Buffer.from(vendor).toString('latin1') : '';
  const pxe = vendorText.startsWith('PXEClient');
  if (isIpxe(packet))
    return { file: lease.ipxeScriptUrl, ipxe: true, vendorClass: pxe ? 'PXEClient' : undefined };
  if (arch === ARCH_EFI_X64_HTTP || vendorText.startsWith('HTTPClient')) {
    return { file: `${lease.assetUrl}/ipxe.efi`, vendorClass: 'HTTPClient', ipxe: false };
  }
  if (arch === ARCH_EFI_X64 || arch === ARCH_EFI_BC)
    return { file: 'ipxe.efi', vendorClass: 'PXEClient', ipxe: false };
  if (arch === ARCH_BIOS || pxe) return { file: 'undionly.kpxe', vendorClass: 'PXEClient', ipxe: false };
  return { ipxe: false };
}

function broadcastAddress(cidr: string): string {
  const { network, size } = parseCidr(cidr);
  return intToIpv4(network + size - 1);
}

/** Options every reply to a known host carries; `lease` false for INFORM (RFC 2131 section 4.3.5). */
export function leaseOptions(
  lease: HostLease,
  serverIp: string,
  boot: BootChoice,
  withLease: boolean,
): Map<number, Uint8Array> {
  const { subnet } = lease;
  const o = new Map<number, Uint8Array>();
  o.set(54, ipv4Bytes(serverIp));
  if (withLease) {
    o.set(51, u32(subnet.lease_time));
    o.set(58, u32(Math.floor(subnet.lease_time / 2)));
    o.set(59, u32(Math.floor((subnet.lease_time * 7) / 8)));
  }
  o.set(1, ipv4Bytes(netmask(subnet.cidr)));
  if (subnet.gateway) o.set(3, ipv4Bytes(subnet.gateway));
  if (subnet.dns.length > 0) o.set(6, ipList(subnet.dns));
  o.set(12, text(lease.hostname));
  if (subnet.domain) o.set(15, text(subnet.domain));
  if (subnet.mtu) o.set(26, u16(subnet.mtu));
  o.set(28, ipv4Bytes(broadcastAddress(subnet.cidr)));
  if (subnet.ntp.length > 0) o.set(42, ipList(subnet.ntp));
  if (subnet.domain_search.length > 0) o.set(119, domainSearch(subnet.domain_search));
  if (boot.vendorClass) o.set(60, text(boot.vendorClass));
  if (boot.file) {
    o.set(66, text(lease.tftpServer));
    o.set(67, text(boot.file));
  }
  // iPXE option 176 "no-pxedhcp": do not wait for a ProxyDHCP answer that a lone DHCP server never
  // sends (~2 s per boot in the virtual lab).
  if (boot.ipxe) o.set(175, encodeSubOptions(new Map([[176, u8(1)]])));
  for (const custom of subnet.options) o.set(custom.code, customOptionBytes(custom));
  return o;
}
