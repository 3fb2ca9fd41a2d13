// Static reservations from the model: one lease per interface of every host of a site.
import { ipv4ToInt, macSlug, parseCidr } from '../../sot/ipv4';
import { agentServes, assetBase, servingAgent } from '../../sot/serving-agent';
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
  /**
   * Whether a relay's address (giaddr) is in a subnet this agent serves; relayed requests from
   * other racks are left to their own agents. None: every relay is served.
   */
  servesRelay?(giaddr: string): boolean;
}

/**
 * One lease per interface; the boot URLs and next server are those of `agent` (this agent's name)
 * where it serves the subnet, else of the agent that does (sot/serving-agent.ts).
 */
export function leasesFromModel(
  model: Model,
  siteId: string,
  armed: ReadonlySet<string> = new Set(),
  agent?: string,
): Map<string, HostLease> {
  const siteModel = own(model.sites, siteId);
  if (!siteModel) throw new Error(`unknown site ${siteId}`);
  const { site, hosts } = siteModel;
  const leases = new Map<string, HostLease>();
  for (const host of hosts) {
    for (const iface of host.interfaces) {
      const subnet = site.subnets.find((s) => s.id === iface.subnet);
      if (!subnet) continue;
      const assetUrl = assetBase(servingAgent(site, subnet.id, agent));
      const tftpServer = assetUrl ? new URL(assetUrl).hostname : '0.0.0.0';
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

/** The CIDRs of the site's subnets `agent` serves (all of them for an agent without `subnets`). */
export function servedCidrs(model: Model, siteId: string, agent?: string): string[] {
  const site = own(model.sites, siteId)?.site;
  if (!site) throw new Error(`unknown site ${siteId}`);
  const entry = agent === undefined ? site.agents[0] : site.agents.find((a) => a.name === agent);
  return site.subnets.filter((s) => entry && agentServes(entry, s.id)).map((s) => s.cidr);
}

/** A relay filter: giaddr inside one of `cidrs`. */
export function relayFilter(cidrs: readonly string[]): (giaddr: string) => boolean {
  const ranges = cidrs.map(parseCidr);
  return (giaddr) => {
    const n = ipv4ToInt(giaddr);
    for (const { network, size } of ranges) if (n >= network && n < network + size) return true;
    return false;
  };
}

export function mapBackend(
  leases: ReadonlyMap<string, HostLease>,
  servesRelay?: (giaddr: string) => boolean,
): LeaseBackend {
  return { lookupHost: (mac) => leases.get(mac.toLowerCase()), ...(servesRelay ? { servesRelay } : {}) };
}

/**
 * Leases marked armed as the netboot table says when the packet arrives. Leases built from the model
 * alone called every host "(not armed)" in its events, armed or not.
 */
export function armedBackend(
  leases: () => ReadonlyMap<string, HostLease>,
  isArmed: (mac: string) => boolean,
  servesRelay?: (giaddr: string) => boolean,
): LeaseBackend {
  return {
    ...(servesRelay ? { servesRelay } : {}),
    lookupHost(mac) {
      const lease = leases().get(mac.toLowerCase());
      return lease && { ...lease, armed: isArmed(lease.mac) };
    },
  };
}
