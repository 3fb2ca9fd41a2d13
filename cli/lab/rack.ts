// The lab's redundancy (issue 13, docs/lab.md "Two agents and a relayed rack"): a second agent in a
// namespace of its own on the lab bridge, and a second rack — its own bridge and subnet, reaching the
// agents only through ISC dhcrelay in a relay namespace that also routes between the two networks.
// Everything is inside the lab's namespaces; deleting them removes it all.
import { addAddress, addBridge, addNamespace, addVeth, ip, linkUp, namespaceExists, nsExec } from './netns';
import { AGENT_ADDRESS, LAB_PREFIX_LENGTH, type LabNames } from './network';

export const AGENT_B_ADDRESS = '10.77.0.250';
export const AGENT_B_ADDRESS6 = 'fd77::250';
/** The relay's address on the lab bridge: the agents' route to the rack. */
export const RELAY_ADDRESS = '10.77.0.254';
/** The rack's subnet (`lab-rack` in examples/lab); the relay is its gateway and giaddr. */
export const RACK_CIDR = '10.78.0.0/24';
export const RACK_GATEWAY = '10.78.0.1';
export const RACK_PREFIX6 = 'fd78::/64';
export const RACK_GATEWAY6 = 'fd78::1';
export const RACK_SUBNET_ID = 'lab-rack';

export interface RackNames {
  agentBNs: string;
  /** Agent B's veth end (its boot interface) and the lab bridge's end of it. */
  agentBIf: string;
  agentBLabIf: string;
  relayNs: string;
  /** The relay's upstream (lab bridge) and downstream (rack bridge) interfaces, and their bridge ends. */
  relayUp: string;
  relayUpLab: string;
  relayDown: string;
  relayDownLab: string;
  rackBridge: string;
}

export function rackNames(names: LabNames): RackNames {
  const prefix = names.bridge.replace(/-br0$/, '');
  return {
    agentBNs: `${prefix}-agentb`,
    agentBIf: `${prefix}-agtb0`,
    agentBLabIf: `${prefix}-labb0`,
    relayNs: `${prefix}-relay`,
    relayUp: `${prefix}-rup`,
    relayUpLab: `${prefix}-rupl`,
    relayDown: `${prefix}-rdn`,
    relayDownLab: `${prefix}-rdnl`,
    rackBridge: `${prefix}-br1`,
  };
}

async function ensureNamespace(ns: string): Promise<void> {
  if (!(await namespaceExists(ns))) await addNamespace(ns);
}

/** A veth from `ns` (as `name`, with `cidrs`) to a bridge of the lab namespace; kept if it exists. */
async function vethToBridge(
  labNs: string,
  bridge: string,
  ns: string,
  [name, labEnd]: [string, string],
  cidrs: string[],
): Promise<void> {
  const links = await ip(['-n', ns, '-o', 'link', 'show']);
  if (!links.includes(` ${name}@`)) {
    await addVeth(ns, name, labNs, labEnd);
    await ip(['-n', labNs, 'link', 'set', labEnd, 'master', bridge]);
    for (const cidr of cidrs) await addAddress(ns, name, cidr);
  }
  await linkUp(ns, name);
  await linkUp(labNs, labEnd);
}

/**
 * Agent B's namespace on the lab bridge, the rack bridge, and the relay between them; the agents'
 * namespaces route the rack through the relay. Idempotent, like createLabNetwork (which runs first).
 */
export async function createRackNetwork(names: LabNames): Promise<RackNames> {
  const r = rackNames(names);
  for (const ns of [r.agentBNs, r.relayNs]) await ensureNamespace(ns);
  const labLinks = await ip(['-n', names.labNs, '-o', 'link', 'show']);
  if (!labLinks.includes(` ${r.rackBridge}:`)) await addBridge(names.labNs, r.rackBridge);
  await linkUp(names.labNs, r.rackBridge);
  const lab = `/${LAB_PREFIX_LENGTH}`;
  await vethToBridge(
    names.labNs,
    names.bridge,
    r.agentBNs,
    [r.agentBIf, r.agentBLabIf],
    [`${AGENT_B_ADDRESS}${lab}`, `${AGENT_B_ADDRESS6}/64`],
  );
  await vethToBridge(
    names.labNs,
    names.bridge,
    r.relayNs,
    [r.relayUp, r.relayUpLab],
    [`${RELAY_ADDRESS}${lab}`],
  );
  await vethToBridge(
    names.labNs,
    r.rackBridge,
    r.relayNs,
    [r.relayDown, r.relayDownLab],
    [`${RACK_GATEWAY}/24`, `${RACK_GATEWAY6}/64`],
  );
  await ip(['-n', r.agentBNs, 'route', 'replace', '255.255.255.255/32', 'dev', r.agentBIf]);
  for (const ns of [names.agentNs, r.agentBNs])
    await ip(['-n', ns, 'route', 'replace', RACK_CIDR, 'via', RELAY_ADDRESS]);
  // The relay routes the rack's TFTP, HTTP and checkpoint traffic to the agents and back; radvd there
  // needs IPv6 forwarding too (iPXE waits ~13 s for a router advertisement otherwise).
  await nsExec(r.relayNs, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
  await nsExec(r.relayNs, 'sysctl', ['-q', '-w', 'net.ipv6.conf.all.forwarding=1']);
  return r;
}

/** ISC dhcrelay's argv in the relay namespace: rack requests go to both agents. */
export function dhcrelayArgv(r: RackNames, pidFile: string): string[] {
  return [
    ...['ip', 'netns', 'exec', r.relayNs, '/usr/sbin/dhcrelay', '-4', '-d', '-pf', pidFile],
    ...['-id', r.relayDown, '-iu', r.relayUp, AGENT_ADDRESS, AGENT_B_ADDRESS],
  ];
}

/** Deletes agent B's and the relay's namespaces (the rack bridge goes with the lab namespace). */
export async function deleteRackNetwork(names: LabNames): Promise<void> {
  const r = rackNames(names);
  for (const ns of [r.agentBNs, r.relayNs]) if (await namespaceExists(ns)) await ip(['netns', 'delete', ns]);
}
