// The options of an OFFER or ACK for a known host (RFC 2132; RFC 4578 for PXE clients).
import { netmask, parseCidr, intToIpv4 } from '../../sot/ipv4';
import type { DhcpPacket } from './codec';
import { clientArch, encodeSubOptions, ipv4Bytes, userClasses } from './codec-options';
import type { HostLease } from './leases';
import type { Subnet } from '../../schemas/site';
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

/** A subnet's option values, as bytes: the model does not change under a lease object. */
interface SubnetBytes {
  leaseTime: Uint8Array;
  renewal: Uint8Array;
  rebinding: Uint8Array;
  mask: Uint8Array;
  router?: Uint8Array;
  dns?: Uint8Array;
  domain?: Uint8Array;
  mtu?: Uint8Array;
  broadcast: Uint8Array;
  ntp?: Uint8Array;
  search?: Uint8Array;
  custom: [number, Uint8Array][];
}

/**
 * Built once per subnet object (a new model has new ones): parsing the CIDR and encoding every value
 * on each packet was a fifth of the server's time under load. Values are shared between replies and
 * never written to (encode copies them).
 */
const subnetCache = new WeakMap<Subnet, SubnetBytes>();
const serverIds = new Map<string, Uint8Array>();
const IPXE_NO_PXEDHCP = encodeSubOptions(new Map([[176, u8(1)]]));

function subnetBytes(subnet: Subnet): SubnetBytes {
  const cached = subnetCache.get(subnet);
  if (cached) return cached;
  const bytes: SubnetBytes = {
    leaseTime: u32(subnet.lease_time),
    renewal: u32(Math.floor(subnet.lease_time / 2)),
    rebinding: u32(Math.floor((subnet.lease_time * 7) / 8)),
    mask: ipv4Bytes(netmask(subnet.cidr)),
    ...(subnet.gateway ? { router: ipv4Bytes(subnet.gateway) } : {}),
    ...(subnet.dns.length > 0 ? { dns: ipList(subnet.dns) } : {}),
    ...(subnet.domain ? { domain: text(subnet.domain) } : {}),
    ...(subnet.mtu ? { mtu: u16(subnet.mtu) } : {}),
    broadcast: ipv4Bytes(broadcastAddress(subnet.cidr)),
    ...(subnet.ntp.length > 0 ? { ntp: ipList(subnet.ntp) } : {}),
    ...(subnet.domain_search.length > 0 ? { search: domainSearch(subnet.domain_search) } : {}),
    custom: subnet.options.map((custom) => [custom.code, customOptionBytes(custom)]),
  };
  subnetCache.set(subnet, bytes);
  return bytes;
}

function serverIdBytes(serverIp: string): Uint8Array {
  let bytes = serverIds.get(serverIp);
  if (!bytes) {
    bytes = ipv4Bytes(serverIp);
    // One or two addresses in practice; bounded all the same.
    if (serverIds.size > 64) serverIds.clear();
    serverIds.set(serverIp, bytes);
  }
  return bytes;
}

/** Options every reply to a known host carries; `lease` false for INFORM (RFC 2131 section 4.3.5). */
export function leaseOptions(
  lease: HostLease,
  serverIp: string,
  boot: BootChoice,
  withLease: boolean,
): Map<number, Uint8Array> {
  const b = subnetBytes(lease.subnet);
  const o = new Map<number, Uint8Array>();
  o.set(54, serverIdBytes(serverIp));
  if (withLease) {
    o.set(51, b.leaseTime);
    o.set(58, b.renewal);
    o.set(59, b.rebinding);
  }
  o.set(1, b.mask);
  if (b.router) o.set(3, b.router);
  if (b.dns) o.set(6, b.dns);
  o.set(12, text(lease.hostname));
  if (b.domain) o.set(15, b.domain);
  if (b.mtu) o.set(26, b.mtu);
  o.set(28, b.broadcast);
  if (b.ntp) o.set(42, b.ntp);
  if (b.search) o.set(119, b.search);
  if (boot.vendorClass) o.set(60, text(boot.vendorClass));
  if (boot.file) {
    o.set(66, text(lease.tftpServer));
    o.set(67, text(boot.file));
  }
  // iPXE option 176 "no-pxedhcp": do not wait for a ProxyDHCP answer that a lone DHCP server never
  // sends (~2 s per boot in the virtual lab).
  if (boot.ipxe) o.set(175, IPXE_NO_PXEDHCP);
  for (const [code, value] of b.custom) o.set(code, value);
  return o;
}
