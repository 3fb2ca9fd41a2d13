// Which agent of a site serves a subnet: its `subnets`, or every subnet when it lists none.
import type { Agent, Site } from '../schemas/site';

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
