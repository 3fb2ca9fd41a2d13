// /agent/v1: what site agents call (docs/agent.md, docs/ha.md): their site's applied model revision,
// a given commit's revision, heartbeats, and the site's arms and power claims (agent-boot-api.ts). Every agent token belongs to one site: no token or an
// unknown one is 401, a token used for another site is 403. A token may also belong to one agent:
// its heartbeats report for that agent only, and no other token may report as it (403).
// /api/v1/sites/:site/agents shows the heartbeats to users.
import { createHash, timingSafeEqual } from 'node:crypto';
import { Hono, type MiddlewareHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { z } from 'zod';
import { AgentHeartbeatSchema } from '../../schemas/agent';
import type { ModelStore } from '../../activities/store/model-store';
import { modelForSite } from '../../schemas/model';
import {
  AgentRegistryFullError,
  agentRegistryOptions,
  createAgentRegistry,
  type AgentRegistry,
} from '../agent-registry';
import type { BootStateStore } from '../../activities/store/boot-state-store';
import { agentBootRoutes } from './agent-boot-api';
import { bearerAuth } from './auth';
import type { AppDeps, AppEnv } from './deps';

export interface AgentToken {
  site: string;
  /** Shown in logs and in the agents list; never the secret. */
  name: string;
  token: string;
  /** The one agent this token reports for; absent: a site token, for any agent name of its site. */
  agent?: string;
}

interface Caller {
  site: string;
  name: string;
  agent?: string;
}

export type AgentEnv = { Variables: AppEnv['Variables'] & { caller: Caller } };

const digest = (token: string) => createHash('sha256').update(token).digest();

/** 401 without a known token; 403 when `?site=` (or a body's site, checked later) names another site. */
export function agentAuth(tokens: readonly AgentToken[]): MiddlewareHandler<AgentEnv> {
  const known = tokens.map((t) => ({
    caller: { site: t.site, name: t.name, ...(t.agent ? { agent: t.agent } : {}) },
    digest: digest(t.token),
  }));
  return async (c, next) => {
    const presented = /^Bearer +(\S+) *$/i.exec(c.req.header('authorization') ?? '')?.[1];
    // Every digest is compared, so the time taken does not tell which token nearly matched.
    let match: Caller | undefined;
    if (presented) {
      const d = digest(presented);
      for (const k of known) if (timingSafeEqual(d, k.digest)) match = k.caller;
    }
    if (!match) {
      c.var.log.warn({ path: c.req.path, token: presented ? 'unknown' : 'none' }, 'agent request refused');
      return c.json(
        {
          error: presented
            ? 'the agent token is not accepted'
            : 'an agent token is required (Authorization: Bearer <token>)',
        },
        401,
        { 'WWW-Authenticate': 'Bearer realm="vaquero-agent"' },
      );
    }
    c.set('caller', match);
    mustBeOwnSite(c.var.caller, c.req.query('site'), c.var.log);
    await next();
  };
}

function mustBeOwnSite(caller: Caller, site: string | undefined, log: AppEnv['Variables']['log']): void {
  if (site === undefined || site === caller.site) return;
  log.warn({ token: caller.name, tokenSite: caller.site, site }, 'agent request refused: another site');
  throw new HTTPException(403, {
    message: `the token of site ${caller.site} does not give access to site ${site}`,
  });
}

/** A heartbeat reports for the token's own agent; a site token may not report as an agent with a token of its own. */
function mustBeOwnAgent(
  caller: Caller,
  agent: string,
  owned: ReadonlySet<string>,
  log: AppEnv['Variables']['log'],
) {
  const refuse = (message: string) => {
    log.warn({ token: caller.name, agent }, 'heartbeat refused: another agent');
    throw new HTTPException(403, { message });
  };
  if (caller.agent !== undefined && caller.agent !== agent)
    refuse(`the token ${caller.name} reports for agent ${caller.agent} only, not ${agent}`);
  if (caller.agent === undefined && owned.has(`${caller.site}/${agent}`))
    refuse(`agent ${agent} has its own token; the site token ${caller.name} cannot report as it`);
}

const CommitSchema = z.string().regex(/^[0-9a-zA-Z._-]{1,80}$/, 'must be a commit id');

export interface AgentApiDeps {
  tokens: readonly AgentToken[];
  store?: ModelStore;
  /** The sites' arms and power claims (agent-boot-api.ts); absent: those routes answer 503. */
  bootState?: BootStateStore;
  registry: AgentRegistry;
}

export function agentApiRoutes(deps: AgentApiDeps): Hono<AgentEnv> {
  const app = new Hono<AgentEnv>();
  app.use(agentAuth(deps.tokens));
  const owned = new Set(deps.tokens.flatMap((t) => (t.agent ? [`${t.site}/${t.agent}`] : [])));
  const store = (): ModelStore => {
    if (!deps.store) throw new HTTPException(503, { message: 'this server has no model store' });
    return deps.store;
  };

  const siteRevision = async (commit: string, site: string) => {
    const model = await store().getRevision(commit);
    if (!model) throw new HTTPException(404, { message: `no revision ${commit}` });
    const own = modelForSite(model, site);
    if (!own) throw new HTTPException(404, { message: `site ${site} is not in revision ${commit}` });
    return { commit, model: own };
  };

  app.get('/model', async (c) => {
    const applied = await store().getApplied();
    if (!applied) return c.json({ error: 'no revision has been applied yet' }, 404);
    return c.json(await siteRevision(applied, c.var.caller.site));
  });

  app.get('/model/:commit', async (c) => {
    const commit = CommitSchema.safeParse(c.req.param('commit'));
    if (!commit.success) throw new HTTPException(400, { message: 'invalid commit id' });
    return c.json(await siteRevision(commit.data, c.var.caller.site));
  });

  app.post('/heartbeat', async (c) => {
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      throw new HTTPException(400, { message: 'the request body is not JSON' });
    }
    const beat = AgentHeartbeatSchema.safeParse(body);
    if (!beat.success)
      throw new HTTPException(400, {
        message: `invalid heartbeat: ${beat.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      });
    mustBeOwnSite(c.var.caller, beat.data.site, c.var.log);
    mustBeOwnAgent(c.var.caller, beat.data.agent, owned, c.var.log);
    try {
      deps.registry.heartbeat(beat.data, c.var.caller.name, c.var.caller.agent ? 'agent' : 'site');
    } catch (err) {
      if (!(err instanceof AgentRegistryFullError)) throw err;
      throw new HTTPException(429, { message: err.message });
    }
    return c.json({ status: 'ok', time: new Date().toISOString() });
  });
  app.route(
    '/',
    agentBootRoutes(() => {
      if (!deps.bootState) throw new HTTPException(503, { message: 'this server keeps no boot state' });
      return deps.bootState;
    }),
  );
  return app;
}

/** GET /sites/:site/agents and GET /agents for users (mounted under /api/v1, behind its tokens). */
export function agentStatusRoutes(
  registry: AgentRegistry,
  apiTokens: readonly { name: string; token: string }[],
): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use('/agents', bearerAuth(apiTokens));
  app.use('/sites/:site/agents', bearerAuth(apiTokens));
  app.get('/agents', (c) => c.json({ sites: registry.sites() }));
  app.get('/sites/:site/agents', (c) => c.json(registry.site(c.req.param('site'))));
  return app;
}

/** The agent API and the agents list as the app mounts them (at its root), from its deps. */
export function agentRoutes(deps: AppDeps): Hono<AppEnv> {
  const registry = deps.agents ?? createAgentRegistry(agentRegistryOptions(deps.config.agents));
  const app = new Hono<AppEnv>();
  app.route(
    '/agent/v1',
    agentApiRoutes({
      tokens: deps.secrets.agentTokens ?? [],
      store: deps.store,
      bootState: deps.bootState,
      registry,
    }),
  );
  app.route('/api/v1', agentStatusRoutes(registry, deps.secrets.apiTokens));
  return app;
}
