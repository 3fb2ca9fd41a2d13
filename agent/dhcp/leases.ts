// Static reservations from the model: one lease per interface of every host of a site.
import { macSlug } from '../../sot/ipv4';
import type { Model } from '../../schemas/model';
import type { Subnet } from '../../schemas/site';
import { own } from '../../schemas/common';

export interface HostLease {
  /** Lower-case `aa:bb:cc:dd:ee:ff`. */
  mac: string;
  ipv4: string;
  subnet: Subnet;
  hostname: string;
  /** The per-host iPXE script, served to clients whose user class is iPXE. */
  ipxeScriptUrl: string;
  /** Next server (siaddr and option 66) for the first-stage TFTP download. */
  tftpServer: string;
  /** The agent's HTTP asset base, for UEFI HTTP boot (option 93 = 16). */
  assetUrl: string;
  /**
   * Whether a workflow waits for this host to network-boot (reported in events, not used to answer).
   * The model does not know it; `armedBackend` fills it in from the netboot table.
   */
  armed: boolean;
}

/** A lookup of leases by MAC, for the handler's backend. */
export interface LeaseBackend {
  lookupHost(mac: string): HostLease | undefined;
}

export function leasesFromModel(
  model: Model,
  siteId: string,
  armed: ReadonlySet<string> = new Set(),
): Map<string, HostLease> {
  const siteModel = own(model.sites, siteId);
  if (!siteModel) throw new Error(`unknown site ${siteId}`);
  const { site, hosts } = siteModel;
  const assetUrl = (site.agents[0]?.asset_url ?? '').replace(/\/+$/, '');
  const tftpServer = assetUrl ? new URL(assetUrl).hostname : '0.0.0.0';
  const leases = new Map<string, HostLease>();
  for (const host of hosts) {
    for (const iface of host.interfaces) {
      const subnet = site.subnets.find((s) => s.id === iface.subnet);
      if (!subnet) continue;
      const mac = iface.mac.toLowerCase();
      leases.set(mac, {
        mac,
        ipv4: iface.ipv4,
        subnet,
        hostname: iface.hostname ?? host.name,
        ipxeScriptUrl: `${assetUrl}/ipxe/${macSlug(mac)}`,
        tftpServer,
        assetUrl,
        armed: armed.has(mac) || armed.has(host.name),
      });
    }
  }
  return leases;
}

export function mapBackend(leases: ReadonlyMap<string, HostLease>): LeaseBackend {
  return { lookupHost: (mac) => leases.get(mac.toLowerCase()) };
}

/**
 * Leases marked armed as the netboot table says when the packet arrives. Leases built from the model
 * alone called every host "(not armed)" in its events, armed or not.
 */
export function armedBackend(
  leases: () => ReadonlyMap<string, HostLease>,
  isArmed: (mac: string) => boolean,
): LeaseBackend {
  return {
    lookupHost(mac) {
      const lease = leases().get(mac.toLowerCase());
      return lease && { ...lease, armed: isArmed(lease.mac) };
    },
  };
}
