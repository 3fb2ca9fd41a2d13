import { MANAGED_DHCP_OPTIONS, type DhcpOption, type Site, type Subnet } from '../schemas/site';
import { at, type Diagnostic, type DocRef } from './diagnostics';
import { agentServes } from './serving-agent';
import { firstByKey, type LoadedSot } from './load';
import { intToIpv4, ipInCidr, ipv4ToInt, isReservedAddress, parseCidr } from './ipv4';

const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** Why a custom DHCP option's value does not fit its declared type, or undefined when it fits. */
export function dhcpOptionProblem(option: DhcpOption): string | undefined {
  const { type, value } = option;
  const isInt = (max: number) =>
    typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= max;
  switch (type) {
    case 'string':
      return typeof value === 'string' ? undefined : 'value must be a string';
    case 'ipv4':
      return typeof value === 'string' && IPV4_RE.test(value) ? undefined : 'value must be an IPv4 address';
    case 'ipv4-list':
      return Array.isArray(value) && value.length > 0 && value.every((v) => IPV4_RE.test(v))
        ? undefined
        : 'value must be a non-empty list of IPv4 addresses';
    case 'uint8':
      return isInt(0xff) ? undefined : 'value must be an integer from 0 to 255';
    case 'uint16':
      return isInt(0xffff) ? undefined : 'value must be an integer from 0 to 65535';
    case 'uint32':
      return isInt(0xffffffff) ? undefined : 'value must be an integer from 0 to 4294967295';
    case 'bool':
      return typeof value === 'boolean' ? undefined : 'value must be true or false';
    case 'hex':
      return typeof value === 'string' && /^([0-9a-fA-F]{2}:?)+$/.test(value)
        ? undefined
        : 'value must be hex bytes like "01:02:ff" or "0102ff"';
  }
}

/** A CIDR's address is its network's, its gateway a usable address in it, and no two subnets overlap. */
function checkSubnetAddresses(ref: DocRef, subnets: readonly Subnet[], out: Diagnostic[]): void {
  subnets.forEach((subnet, i) => {
    const { network, size, prefix } = parseCidr(subnet.cidr);
    const address = subnet.cidr.split('/')[0] ?? '';
    if (ipv4ToInt(address) !== network) {
      const meant = `${intToIpv4(network)}/${prefix}`;
      out.push(
        at(ref, ['subnets', i, 'cidr'], 'subnet', `must be a network address: did you mean ${meant}?`),
      );
    }
    const overlapped = subnets.slice(0, i).find((other) => {
      const o = parseCidr(other.cidr);
      return o.network < network + size && network < o.network + o.size;
    });
    if (overlapped) {
      const message = `${subnet.cidr} overlaps subnet ${overlapped.id} (${overlapped.cidr})`;
      out.push(at(ref, ['subnets', i, 'cidr'], 'subnet', message));
    }
    const gateway = subnet.gateway;
    if (!gateway) return;
    const path = ['subnets', i, 'gateway'];
    if (!ipInCidr(gateway, subnet.cidr))
      out.push(at(ref, path, 'subnet', `gateway ${gateway} is outside ${subnet.cidr}`));
    else if (isReservedAddress(gateway, subnet.cidr)) {
      const which = ipv4ToInt(gateway) === network ? 'network' : 'broadcast';
      out.push(at(ref, path, 'subnet', `gateway ${gateway} is the ${which} address of ${subnet.cidr}`));
    }
  });
}

/** Hosts on each subnet of each site (by site directory), the first few names for messages. */
function hostsBySubnet(sot: LoadedSot): Map<string, string[]> {
  const hosts = new Map<string, string[]>();
  for (const { value: host, siteDir } of sot.hosts) {
    for (const iface of host.interfaces) {
      const key = `${siteDir}/${iface.subnet}`;
      const names = hosts.get(key) ?? [];
      if (names.at(-1) !== host.name) names.push(host.name);
      hosts.set(key, names);
    }
  }
  return hosts;
}

/** An agent's subnets exist, and every subnet with hosts has an agent that serves it. */
function checkAgentSubnets(
  ref: DocRef,
  site: Site,
  siteDir: string,
  hosts: ReadonlyMap<string, string[]>,
  out: Diagnostic[],
): void {
  const ids = site.subnets.map((s) => s.id);
  site.agents.forEach((agent, i) => {
    agent.subnets?.forEach((id, j) => {
      if (ids.includes(id)) return;
      const message = `agent ${agent.name} serves unknown subnet "${id}" (site ${site.id} has ${ids.join(', ')})`;
      out.push(at(ref, ['agents', i, 'subnets', j], 'agent-subnet', message));
    });
  });
  site.subnets.forEach((subnet, i) => {
    const names = hosts.get(`${siteDir}/${subnet.id}`);
    if (!names || site.agents.some((a) => agentServes(a, subnet.id))) return;
    const some = names.slice(0, 3).join(', ') + (names.length > 3 ? `, ... (${names.length} hosts)` : '');
    const message = `subnet ${subnet.id} has hosts (${some}) but no agent serves it: add it to an agent's subnets`;
    out.push(at(ref, ['subnets', i, 'id'], 'agent-subnet', message));
  });
}

export function checkSubnets(sot: LoadedSot): Diagnostic[] {
  const out: Diagnostic[] = [];
  const hosts = hostsBySubnet(sot);
  for (const { value: site, ref, siteDir } of sot.sites) {
    checkSubnetAddresses(ref, site.subnets, out);
    checkAgentSubnets(ref, site, siteDir, hosts, out);
    site.subnets.forEach((subnet, i) => {
      const codes = new Set<number>();
      subnet.options.forEach((option, j) => {
        const path = ['subnets', i, 'options', j];
        if (MANAGED_DHCP_OPTIONS.includes(option.code)) {
          out.push(
            at(
              ref,
              [...path, 'code'],
              'dhcp-option',
              `option ${option.code} is set by Vaquero from the model; it cannot be a custom option`,
            ),
          );
        } else if (codes.has(option.code)) {
          out.push(
            at(
              ref,
              [...path, 'code'],
              'dhcp-option',
              `option ${option.code} is defined twice in subnet ${subnet.id}`,
            ),
          );
        }
        codes.add(option.code);
        const problem = dhcpOptionProblem(option);
        if (problem)
          out.push(
            at(ref, [...path, 'value'], 'dhcp-option', `option ${option.code} (${option.type}): ${problem}`),
          );
      });
    });
  }
  return out;
}

/** Interface addresses against their subnets, and uniqueness of MACs, UUIDs and addresses. */
export function checkHostAddresses(sot: LoadedSot): Diagnostic[] {
  const out: Diagnostic[] = [];
  // Each site's subnets by id, the first of an id as find() gave it, with its CIDR parsed once.
  const subnetsOf = new Map<
    string,
    Map<string, { subnet: Subnet; network: number; size: number; prefix: number }>
  >();
  for (const { value: site } of firstByKey(sot.sites, (s) => s.value.id).values()) {
    const byId = new Map<string, { subnet: Subnet; network: number; size: number; prefix: number }>();
    for (const subnet of site.subnets)
      if (!byId.has(subnet.id)) byId.set(subnet.id, { subnet, ...parseCidr(subnet.cidr) });
    subnetsOf.set(site.id, byId);
  }
  const macs = new Map<string, string>();
  const uuids = new Map<string, string>();
  const ips = new Map<string, string>();
  for (const { value: host, ref, siteDir } of sot.hosts) {
    const where = `${siteDir}/${host.name}`;
    if (host.uuid) {
      const uuid = host.uuid.toLowerCase();
      const first = uuids.get(uuid);
      if (first) out.push(at(ref, ['uuid'], 'duplicate-uuid', `UUID ${host.uuid} is also used by ${first}`));
      else uuids.set(uuid, where);
    }
    if (host.interfaces.filter((i) => i.boot).length > 1) {
      out.push(at(ref, ['interfaces'], 'interface', 'only one interface may be marked boot: true'));
    }
    host.interfaces.forEach((iface, i) => {
      const firstMac = macs.get(iface.mac);
      if (firstMac) {
        out.push(
          at(ref, ['interfaces', i, 'mac'], 'duplicate-mac', `MAC ${iface.mac} is also used by ${firstMac}`),
        );
      } else macs.set(iface.mac, where);
      const found = subnetsOf.get(siteDir)?.get(iface.subnet);
      if (!found) return;
      const { subnet, network, size, prefix } = found;
      const path = ['interfaces', i, 'ipv4'];
      const address = ipv4ToInt(iface.ipv4);
      if (address < network || address >= network + size) {
        out.push(at(ref, path, 'subnet', `${iface.ipv4} is outside subnet ${subnet.id} (${subnet.cidr})`));
        return;
      }
      // isReservedAddress, on the CIDR parsed once.
      if (prefix < 31 && (address === network || address === network + size - 1)) {
        out.push(
          at(ref, path, 'subnet', `${iface.ipv4} is the network or broadcast address of ${subnet.cidr}`),
        );
      } else if (iface.ipv4 === subnet.gateway) {
        out.push(at(ref, path, 'subnet', `${iface.ipv4} is the gateway of subnet ${subnet.id}`));
      }
      const key = `${siteDir}/${subnet.id}/${iface.ipv4}`;
      const firstIp = ips.get(key);
      if (firstIp)
        out.push(
          at(ref, path, 'duplicate-ip', `${iface.ipv4} is also used by ${firstIp} in subnet ${subnet.id}`),
        );
      else ips.set(key, where);
    });
  }
  return out;
}
