// Which agent of a site serves a subnet: its `subnets`, or every subnet when it lists none.
import type { Agent, Site } from '../schemas/site';
import { ipInCidr } from './ipv4';

export function agentServes(agent: Agent, subnetId: string): boolean {
  return agent.subnets === undefined || agent.subnets.includes(subnetId);
}

/**
 * The agent a host on `subnetId` boots from: `preferred` (the agent rendering or answering) when it
 * serves the subnet, so a redundant pair each hand out their own URLs; else the first that serves it.
 * The first agent only when none does, which validation refuses for a subnet with hosts.
 */
export function servingAgent(site: Site, subnetId: string, preferred?: string): Agent | undefined {
  const own = preferred === undefined ? undefined : site.agents.find((a) => a.name === preferred);
  if (own && agentServes(own, subnetId)) return own;
  return site.agents.find((a) => agentServes(a, subnetId)) ?? site.agents[0];
}

/** An agent's asset URL without the trailing slash, the base of every boot URL it serves. */
export function assetBase(agent: Agent | undefined): string {
  return (agent?.asset_url ?? '').replace(/\/+$/, '');
}

/**
 * The subnet's other agents with an asset URL of their own, in site order: where a host whose agent
 * died falls back to (its script's `||` alternatives, `urls.mirrors`).
 */
export function mirrorAgents(site: Site, subnetId: string, serving: Agent | undefined): Agent[] {
  const base = assetBase(serving);
  return site.agents.filter(
    (a) => a !== serving && a.asset_url && agentServes(a, subnetId) && assetBase(a) !== base,
  );
}

/**
 * The asset URLs a generic chain script (`/boot.ipxe`) falls back to after `agent`'s own: the other
 * agents of the subnet `clientIp` is on or, when the address is on none (in-process, unknown), of
 * the subnets `agent` serves. In site order, without duplicates.
 */
export function chainPeers(site: Site, agent: Agent | undefined, clientIp?: string): string[] {
  const client = clientIp ? site.subnets.find((s) => ipInCidr(clientIp, s.cidr)) : undefined;
  const subnets = client
    ? [client.id]
    : site.subnets.map((s) => s.id).filter((id) => !agent || agentServes(agent, id));
  const own = assetBase(agent);
  const peers = site.agents.filter((a) => a !== agent && subnets.some((id) => agentServes(a, id)));
  return [...new Set(peers.map(assetBase))].filter((b) => b && b !== own);
}
