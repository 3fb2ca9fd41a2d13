import { MANAGED_DHCP_OPTIONS, type DhcpOption } from '../../schemas/site';
import { at, type Diagnostic } from './diagnostics';
import type { LoadedSot } from './load';
import { ipInCidr, isReservedAddress } from './render';

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

export function checkSubnets(sot: LoadedSot): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const { value: site, ref } of sot.sites) {
    site.subnets.forEach((subnet, i) => {
      if (subnet.gateway && !ipInCidr(subnet.gateway, subnet.cidr)) {
        out.push(
          at(ref, ['subnets', i, 'gateway'], 'subnet', `gateway ${subnet.gateway} is outside ${subnet.cidr}`),
        );
      }
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
  const sites = new Map(sot.sites.map((s) => [s.value.id, s.value]));
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
      const subnet = sites.get(siteDir)?.subnets.find((s) => s.id === iface.subnet);
      if (!subnet) return;
      const path = ['interfaces', i, 'ipv4'];
      if (!ipInCidr(iface.ipv4, subnet.cidr)) {
        out.push(at(ref, path, 'subnet', `${iface.ipv4} is outside subnet ${subnet.id} (${subnet.cidr})`));
        return;
      }
      if (isReservedAddress(iface.ipv4, subnet.cidr)) {
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
