// The lab's network (docs/lab.md, "What runs where"): two namespaces, nothing in the root one.
// `<prefix>-agent` holds the agent's end of a veth (10.77.0.1/24, fd77::1/64); `<prefix>-lab` holds a
// bridge with the BMC addresses, the other end of the veth and one tap per machine. Deleting both
// namespaces removes all.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

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

async function ip(args: string[]): Promise<string> {
  try {
    return (await run('ip', args, { timeout: 10_000, encoding: 'utf8' })).stdout;
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim();
    throw new Error(`ip ${args.join(' ')}: ${stderr || (err as Error).message}`);
  }
}

/** Runs a command in a namespace and returns its stdout. */
export async function nsExec(ns: string, cmd: string, args: string[], timeoutMs = 10_000): Promise<string> {
  const { stdout } = await run('ip', ['netns', 'exec', ns, cmd, ...args], {
    timeout: timeoutMs,
    encoding: 'utf8',
  });
  return stdout;
}

export async function namespaceExists(ns: string): Promise<boolean> {
  const list = await ip(['netns', 'list']);
  return list.split('\n').some((line) => line.split(' ')[0] === ns);
}

/**
 * Creates the namespaces, bridge and veth, with `bmcAddresses` on the bridge. Idempotent: an existing
 * lab network is kept as it is (its taps and addresses are added where missing).
 */
export async function createLabNetwork(names: LabNames, bmcAddresses: string[]): Promise<void> {
  const { agentNs, labNs, bridge, agentIf, labIf } = names;
  if (!(await namespaceExists(agentNs))) await ip(['netns', 'add', agentNs]);
  if (!(await namespaceExists(labNs))) await ip(['netns', 'add', labNs]);
  const labLinks = await ip(['-n', labNs, '-o', 'link', 'show']);
  if (!labLinks.includes(` ${bridge}:`)) {
    await ip(['-n', labNs, 'link', 'add', bridge, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
  }
  if (!labLinks.includes(` ${labIf}@`)) {
    await ip(['-n', labNs, 'link', 'add', labIf, 'type', 'veth', 'peer', 'name', agentIf, 'netns', agentNs]);
    await ip(['-n', labNs, 'link', 'set', labIf, 'master', bridge]);
    await ip(['-n', agentNs, 'addr', 'add', `${AGENT_ADDRESS}/${LAB_PREFIX_LENGTH}`, 'dev', agentIf]);
    // Without nodad the address is unusable for a second or two, and iPXE asks right away.
    await ip(['-n', agentNs, 'addr', 'add', `${AGENT_ADDRESS6}/64`, 'dev', agentIf, 'nodad']);
  }
  for (const [ns, link] of [
    [agentNs, 'lo'],
    [agentNs, agentIf],
    [labNs, 'lo'],
    [labNs, bridge],
    [labNs, labIf],
  ] as const)
    await ip(['-n', ns, 'link', 'set', link, 'up']);
  // DHCP replies to clients without an address go to 255.255.255.255, which needs a route.
  await ip(['-n', agentNs, 'route', 'replace', '255.255.255.255/32', 'dev', agentIf]);
  const bridgeAddrs = await ip(['-n', labNs, '-o', 'addr', 'show', 'dev', bridge]);
  for (const address of bmcAddresses) {
    if (!bridgeAddrs.includes(` ${address}/`))
      await ip(['-n', labNs, 'addr', 'add', `${address}/${LAB_PREFIX_LENGTH}`, 'dev', bridge]);
  }
}

/** A tap for one machine on the bridge; kept if it exists. QEMU opens it by name in the lab namespace. */
export async function createTap(names: LabNames, index: number): Promise<string> {
  const tap = names.tap(index);
  const links = await ip(['-n', names.labNs, '-o', 'link', 'show']);
  if (!links.includes(` ${tap}:`)) {
    await ip(['-n', names.labNs, 'tuntap', 'add', 'dev', tap, 'mode', 'tap']);
    await ip(['-n', names.labNs, 'link', 'set', tap, 'master', names.bridge]);
  }
  await ip(['-n', names.labNs, 'link', 'set', tap, 'up']);
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
