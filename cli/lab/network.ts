// The lab's network (docs/lab.md, "What runs where"): two namespaces, nothing in the root one.
// `<prefix>-agent` holds the agent's end of a veth (10.77.0.1/24, fd77::1/64); `<prefix>-lab` holds a
// bridge with the BMC addresses, the other end of the veth and one tap per machine. Deleting both
// namespaces removes all.
import {
  addAddress,
  addBridge,
  addBroadcastRoute,
  addNamespace,
  addVeth,
  ip,
  linkUp,
  namespaceExists,
  nsExec,
} from './netns';

export interface LabNames {
  agentNs: string;
  labNs: string;
  bridge: string;
  /** The veth end in the agent namespace: the interface the agent serves. */
  agentIf: string;
  labIf: string;
  tap(index: number): string;
}

export const AGENT_ADDRESS = '10.77.0.1';
export const AGENT_ADDRESS6 = 'fd77::1';
export const LAB_PREFIX_LENGTH = 24;

/** Names for a prefix: `vql` for `vaquero lab`, `vql<id>` for a test. Interface names stay <= 15 chars. */
export function labNames(prefix = 'vql'): LabNames {
  if (!/^[a-z][a-z0-9]{1,7}$/.test(prefix))
    throw new Error(`lab prefix "${prefix}": 2-8 lower-case letters/digits`);
  return {
    agentNs: `${prefix}-agent`,
    labNs: `${prefix}-lab`,
    bridge: `${prefix}-br0`,
    agentIf: `${prefix}-agent0`,
    labIf: `${prefix}-lab0`,
    tap: (index) => `${prefix}-tap${index}`,
  };
}

/**
 * Creates the namespaces, bridge and veth, with `bmcAddresses` on the bridge. Idempotent: an existing
 * lab network is kept as it is (its taps and addresses are added where missing).
 */
export async function createLabNetwork(names: LabNames, bmcAddresses: string[]): Promise<void> {
  const { agentNs, labNs, bridge, agentIf, labIf } = names;
  if (!(await namespaceExists(agentNs))) await addNamespace(agentNs);
  if (!(await namespaceExists(labNs))) await addNamespace(labNs);
  const labLinks = await ip(['-n', labNs, '-o', 'link', 'show']);
  if (!labLinks.includes(` ${bridge}:`)) await addBridge(labNs, bridge);
  if (!labLinks.includes(` ${labIf}@`)) {
    await addVeth(labNs, labIf, agentNs, agentIf);
    await ip(['-n', labNs, 'link', 'set', labIf, 'master', bridge]);
    await addAddress(agentNs, agentIf, `${AGENT_ADDRESS}/${LAB_PREFIX_LENGTH}`);
    await addAddress(agentNs, agentIf, `${AGENT_ADDRESS6}/64`);
  }
  for (const [ns, link] of [
    [agentNs, agentIf],
    [labNs, bridge],
    [labNs, labIf],
  ] as const)
    await linkUp(ns, link);
  await addBroadcastRoute(agentNs, agentIf);
  const bridgeAddrs = await ip(['-n', labNs, '-o', 'addr', 'show', 'dev', bridge]);
  for (const address of bmcAddresses) {
    if (!bridgeAddrs.includes(` ${address}/`))
      await addAddress(labNs, bridge, `${address}/${LAB_PREFIX_LENGTH}`);
  }
}

/**
 * A tap for one machine on `bridge` (the lab bridge by default); kept if it exists. QEMU opens it by
 * name in the lab namespace.
 */
export async function createTap(names: LabNames, index: number, bridge = names.bridge): Promise<string> {
  const tap = names.tap(index);
  const links = await ip(['-n', names.labNs, '-o', 'link', 'show']);
  if (!links.includes(` ${tap}:`)) {
    await ip(['-n', names.labNs, 'tuntap', 'add', 'dev', tap, 'mode', 'tap']);
    await ip(['-n', names.labNs, 'link', 'set', tap, 'master', bridge]);
  }
  await linkUp(names.labNs, tap);
  return tap;
}

/** Deletes both namespaces (with the bridge, veth and taps); missing ones are not an error. */
export async function deleteLabNetwork(names: LabNames): Promise<void> {
  for (const ns of [names.agentNs, names.labNs]) {
    if (await namespaceExists(ns)) await ip(['netns', 'delete', ns]);
  }
}

/**
 * radvd's configuration for the agent side: iPXE waits ~13 s for a router advertisement when none
 * comes. No default route, no DHCPv6 (M and O flags off): only the answer it waits for.
 */
export function radvdConf(names: LabNames): string {
  return [
    `interface ${names.agentIf} {`,
    '  AdvSendAdvert on;',
    '  AdvDefaultLifetime 0;',
    '  MinRtrAdvInterval 3;',
    '  MaxRtrAdvInterval 10;',
    '  prefix fd77::/64 { AdvOnLink on; AdvAutonomous on; };',
    '};',
    '',
  ].join('\n');
}

/** radvd refuses to advertise without forwarding; the setting is per namespace. */
export async function enableIpv6Forwarding(ns: string): Promise<void> {
  await nsExec(ns, 'sysctl', ['-q', '-w', 'net.ipv6.conf.all.forwarding=1']);
}
