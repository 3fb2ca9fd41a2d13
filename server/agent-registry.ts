// The agents each site has, as their heartbeats tell: name, version, last contact. A site whose agents
// have all been silent for longer than the threshold is reported unreachable, and its rollout waits
// rather than failing its hosts (docs/outages.md, "An unreachable site's rollout waits").
//
// Kept in memory: heartbeats come every few seconds, so a new leader after a failover knows every
// live agent again within one heartbeat interval, and a restart loses nothing worth a store write.

import type { AgentHeartbeat } from '../schemas/agent';

export interface AgentStatus extends AgentHeartbeat {
  /** The token the agent presented (its name, never the secret). */
  token: string;
  firstSeen: string;
  lastSeen: string;
  silentSeconds: number;
  state: 'reachable' | 'silent';
}

/** `unknown`: no agent of the site has called since this server started. */
export type SiteReachability = 'reachable' | 'unreachable' | 'unknown';

export interface SiteAgents {
  site: string;
  state: SiteReachability;
  agents: AgentStatus[];
}

interface Entry extends AgentHeartbeat {
  token: string;
  firstSeen: number;
  lastSeen: number;
}

export interface AgentRegistry {
  heartbeat(info: AgentHeartbeat, token: string): void;
  site(site: string): SiteAgents;
  /** Every site with at least one agent heard from. */
  sites(): SiteAgents[];
}

export function createAgentRegistry(options: { silentAfterMs: number; now?: () => number }): AgentRegistry {
  const now = options.now ?? Date.now;
  const bySite = new Map<string, Map<string, Entry>>();

  const statusOf = (e: Entry, at: number): AgentStatus => {
    const silentMs = Math.max(0, at - e.lastSeen);
    return {
      agent: e.agent,
      version: e.version,
      site: e.site,
      token: e.token,
      firstSeen: new Date(e.firstSeen).toISOString(),
      lastSeen: new Date(e.lastSeen).toISOString(),
      silentSeconds: Math.floor(silentMs / 1000),
      state: silentMs > options.silentAfterMs ? 'silent' : 'reachable',
    };
  };

  const site = (id: string): SiteAgents => {
    const at = now();
    const agents = [...(bySite.get(id)?.values() ?? [])]
      .map((e) => statusOf(e, at))
      .sort((a, b) => a.agent.localeCompare(b.agent));
    const state: SiteReachability =
      agents.length === 0
        ? 'unknown'
        : agents.some((a) => a.state === 'reachable')
          ? 'reachable'
          : 'unreachable';
    return { site: id, state, agents };
  };

  return {
    heartbeat(info, token) {
      const at = now();
      let agents = bySite.get(info.site);
      if (!agents) bySite.set(info.site, (agents = new Map<string, Entry>()));
      const firstSeen = agents.get(info.agent)?.firstSeen ?? at;
      agents.set(info.agent, { ...info, token, firstSeen, lastSeen: at });
    },
    site,
    sites: () => [...bySite.keys()].sort().map(site),
  };
}
