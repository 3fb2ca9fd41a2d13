// Which entry of the site's agents this agent is, and whether its boot address is its own: checked
// at start, each a one-line error (exit 2).
import type { Model } from '../schemas/model';
import type { Agent } from '../schemas/site';
import { own } from '../schemas/common';
import { bootAddresses, type BootAddress } from './dhcp/interfaces';

/** A bad configuration found at start: reported as one line, the agent exits 2. */
export class ServiceConfigError extends Error {}

/** This agent's entry in the site's `agents`: by `agentName`, else see `soleAgent`. */
export function agentEntry(
  model: Model,
  siteId: string,
  agentName: string | undefined,
  bootAddress: string | undefined,
): Agent {
  const site = own(model.sites, siteId)?.site;
  if (!site) throw new ServiceConfigError(`the model has no site ${siteId}`);
  const agent = agentName
    ? site.agents.find((a) => a.name === agentName)
    : soleAgent(siteId, site.agents, bootAddress);
  if (!agent)
    throw new ServiceConfigError(
      `site ${siteId} has no agent named ${agentName}; it has ${site.agents.map((a) => a.name).join(', ')}`,
    );
  return agent;
}

/**
 * Without --agent-name: the site's only agent, or the one whose asset_url is on --boot-address.
 * Taking the first of several made a second agent claim the first one's address as its own.
 */
function soleAgent(siteId: string, agents: readonly Agent[], bootAddress: string | undefined): Agent {
  if (agents.length === 1 && agents[0]) return agents[0];
  const mine = agents.find((a) => new URL(a.asset_url).hostname === bootAddress);
  if (mine) return mine;
  throw new ServiceConfigError(
    `site ${siteId} has ${agents.length} agents (${agents.map((a) => a.name).join(', ')}): pass --agent-name`,
  );
}

/** The server identifier is an address of the boot interface: another agent's would divert its clients. */
export function checkBootAddress(interfaces: readonly string[], bootAddress: string): void {
  let addresses: BootAddress[];
  try {
    addresses = bootAddresses(interfaces);
  } catch (err) {
    throw new ServiceConfigError((err as Error).message);
  }
  if (addresses.some((a) => a.address === bootAddress)) return;
  const have = addresses.map((a) => a.address).join(', ');
  throw new ServiceConfigError(
    `the boot address ${bootAddress} is not on ${interfaces.join(', ')} (it has ${have}): pass --boot-address or --agent-name`,
  );
}
