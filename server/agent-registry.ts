// The agents each site has, as their heartbeats tell: name, version, last contact. A site whose agents
// have all been silent for longer than the threshold is reported unreachable, and its rollout waits
// rather than failing its hosts (docs/outages.md, "An unreachable site's rollout waits").
//
// Kept in memory: heartbeats come every few seconds, so a new leader after a failover knows every
// live agent again within one heartbeat interval, and a restart loses nothing worth a store write.
//
// Bounded, because a site token lets its holder invent agent names: names reported with a site-wide
// token take at most `maxPerSite` places per site and `maxTotal` in all, and an agent silent for
// `forgetAfterMs` is dropped. Names bound to their own token (config) are outside the bound: the
// config lists them, and a flood through the site token must not lock them out.

import type { AgentHeartbeat } from '../schemas/agent';
import type { ServerConfig } from './config';

/** `agent`: the heartbeat came with a token of that agent alone; `site`: with the site's shared token. */
export type AgentIdentity = 'agent' | 'site';

export interface AgentStatus extends AgentHeartbeat {
  /** The token the agent presented (its name, never the secret). */
  token: string;
  identity: AgentIdentity;
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
  identity: AgentIdentity;
  firstSeen: number;
  lastSeen: number;
}

/** A new agent name refused because the registry holds as many as it may (HTTP 429). */
export class AgentRegistryFullError extends Error {
  override name = 'AgentRegistryFullError';
}

export interface AgentRegistry {
  /** Records a heartbeat; throws AgentRegistryFullError for a new site-token name beyond the bounds. */
  heartbeat(info: AgentHeartbeat, token: string, identity?: AgentIdentity): void;
  site(site: string): SiteAgents;
  /** Every site with at least one agent heard from. */
  sites(): SiteAgents[];
}

export interface AgentRegistryOptions {
  silentAfterMs: number;
  /** An agent silent this long is dropped (default 24 h). */
  forgetAfterMs?: number;
  /** Site-token agent names per site (default 32). */
  maxPerSite?: number;
  /** Site-token agent names over all sites (default 1024). */
  maxTotal?: number;
  now?: () => number;
}

export const AGENT_REGISTRY_DEFAULTS = { forgetAfterMs: 86_400_000, maxPerSite: 32, maxTotal: 1024 };

/** The registry's bounds from the server config's `agents` section. */
export function agentRegistryOptions(agents: ServerConfig['agents']): AgentRegistryOptions {
  return {
    silentAfterMs: agents.unreachable_after_s * 1000,
    forgetAfterMs: agents.forget_after_s * 1000,
    maxPerSite: agents.max_agents_per_site,
    maxTotal: agents.max_agents,
  };
}

export function createAgentRegistry(options: AgentRegistryOptions): AgentRegistry {
  const now = options.now ?? Date.now;
  const { forgetAfterMs, maxPerSite, maxTotal } = { ...AGENT_REGISTRY_DEFAULTS, ...options };
  const bySite = new Map<string, Map<string, Entry>>();
  // Sites heard from since the start, so a site whose agents were all forgotten stays `unreachable`
  // (its rollout waits) instead of `unknown`. Bounded by the sites that have tokens.
  const heard = new Set<string>();
  let siteTokenNames = 0;

  const forget = (site: string, at: number) => {
    const agents = bySite.get(site);
    if (!agents) return;
    for (const [name, e] of agents)
      if (at - e.lastSeen > forgetAfterMs) {
        agents.delete(name);
        if (e.identity === 'site') siteTokenNames -= 1;
      }
    if (agents.size === 0) bySite.delete(site);
  };
  const forgetAll = (at: number) => {
    for (const site of [...bySite.keys()]) forget(site, at);
  };

  const statusOf = (e: Entry, at: number): AgentStatus => {
    const silentMs = Math.max(0, at - e.lastSeen);
    return {
      agent: e.agent,
      version: e.version,
      site: e.site,
      token: e.token,
      identity: e.identity,
      firstSeen: new Date(e.firstSeen).toISOString(),
      lastSeen: new Date(e.lastSeen).toISOString(),
      silentSeconds: Math.floor(silentMs / 1000),
      state: silentMs > options.silentAfterMs ? 'silent' : 'reachable',
    };
  };

  const site = (id: string): SiteAgents => {
    const at = now();
    forget(id, at);
    const agents = [...(bySite.get(id)?.values() ?? [])]
      .map((e) => statusOf(e, at))
      .sort((a, b) => a.agent.localeCompare(b.agent));
    const state: SiteReachability = agents.some((a) => a.state === 'reachable')
      ? 'reachable'
      : heard.has(id)
        ? 'unreachable'
        : 'unknown';
    return { site: id, state, agents };
  };

  /** Throws when a new site-token name would go beyond the bounds. */
  const admit = (site: string, at: number) => {
    forget(site, at);
    const onSite = [...(bySite.get(site)?.values() ?? [])].filter((e) => e.identity === 'site').length;
    if (onSite >= maxPerSite)
      throw new AgentRegistryFullError(
        `site ${site} already has ${maxPerSite} agents reporting with its site token ` +
          `(agents.max_agents_per_site); a new name is accepted once one has been silent for ` +
          `${Math.round(forgetAfterMs / 1000)} s (agents.forget_after_s), or give the agent its own token`,
      );
    if (siteTokenNames >= maxTotal) forgetAll(at);
    if (siteTokenNames >= maxTotal)
      throw new AgentRegistryFullError(
        `the server already has ${maxTotal} agents reporting with site tokens (agents.max_agents)`,
      );
  };

  return {
    heartbeat(info, token, identity = 'site') {
      const at = now();
      const known = bySite.get(info.site)?.get(info.agent);
      const counted = (i: AgentIdentity | undefined) => (i === 'site' ? 1 : 0);
      if (identity === 'site' && known?.identity !== 'site') admit(info.site, at);
      let agents = bySite.get(info.site);
      if (!agents) bySite.set(info.site, (agents = new Map<string, Entry>()));
      siteTokenNames += counted(identity) - counted(agents.get(info.agent)?.identity);
      const firstSeen = agents.get(info.agent)?.firstSeen ?? at;
      agents.set(info.agent, { ...info, token, identity, firstSeen, lastSeen: at });
      heard.add(info.site);
    },
    site,
    sites: () => {
      forgetAll(now());
      return [...bySite.keys()].sort().map(site);
    },
  };
}
