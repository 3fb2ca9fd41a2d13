// /agent/v1's site boot state (docs/ha.md, "Site-wide boot state"): the arms every agent of the site
// watches and caches, and the power claims that keep a power cycle to one per attempt across agents.
// Every write answers once it is durable in the server's store, where every agent and server reads it.
// The site is always the caller's token's: an agent never reads or writes another site's state.
import type { Context } from 'hono';
import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { z } from 'zod';
import { ArmEntrySchema, ClaimBeginSchema, ClaimKeySchema, SeenReportSchema } from '../../schemas/agent';
import { BootStateFullError, type BootStateStore } from '../../activities/store/boot-state-store';
import type { AgentEnv } from './agent-api';

/** A watch answers by then at the latest, inside the agent's request timeout and any proxy's idle limit. */
export const WATCH_MAX_MS = 25_000;

const MAC = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/;

async function body<S extends z.ZodType>(c: Context<AgentEnv>, schema: S, what: string): Promise<z.infer<S>> {
  let json: unknown;
  try {
    json = await c.req.json();
  } catch {
    throw new HTTPException(400, { message: 'the request body is not JSON' });
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success)
    throw new HTTPException(400, {
      message: `invalid ${what}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ')}`,
    });
  return parsed.data;
}

function macParam(c: Context<AgentEnv>): string {
  const mac = c.req.param('mac') ?? '';
  if (!MAC.test(mac))
    throw new HTTPException(400, { message: 'the MAC must be lowercase like 52:54:00:12:34:56' });
  return mac;
}

function claimKey(value: string | undefined): string {
  const key = ClaimKeySchema.safeParse(value);
  if (!key.success) throw new HTTPException(400, { message: 'a power-claim key is required (?key=)' });
  return key.data;
}

function full<T>(work: Promise<T>): Promise<T> {
  return work.catch((err: unknown) => {
    throw err instanceof BootStateFullError ? new HTTPException(507, { message: err.message }) : err;
  });
}

export function agentBootRoutes(store: () => BootStateStore): Hono<AgentEnv> {
  const app = new Hono<AgentEnv>();

  app.get('/arms', async (c) => {
    const sinceText = c.req.query('since');
    const since = sinceText === undefined ? -1 : Number(sinceText);
    if (!Number.isSafeInteger(since) || since < -1)
      throw new HTTPException(400, { message: 'since must be a revision (a whole number)' });
    const waitText = c.req.query('wait_ms');
    const wait = waitText === undefined ? WATCH_MAX_MS : Math.min(Number(waitText), WATCH_MAX_MS);
    if (!Number.isFinite(wait) || wait < 0) throw new HTTPException(400, { message: 'wait_ms must be >= 0' });
    // An agent that sends `epoch` (empty: it holds none) knows the field; older ones get none.
    const epoch = c.req.query('epoch');
    if (epoch !== undefined && epoch.length > 64)
      throw new HTTPException(400, { message: 'epoch must be at most 64 characters' });
    const site = await store().watch(c.var.caller.site, since, wait, c.req.raw.signal, epoch || undefined);
    if (epoch === undefined) delete site.epoch;
    return c.json(site);
  });

  app.put('/arms/:mac', async (c) => {
    const mac = macParam(c);
    const entry = await body(c, ArmEntrySchema, 'arm entry');
    if (entry.mac !== mac)
      throw new HTTPException(400, { message: `the entry is for ${entry.mac}, not ${mac}` });
    if (entry.site !== c.var.caller.site)
      throw new HTTPException(403, {
        message: `the token of site ${c.var.caller.site} cannot arm in ${entry.site}`,
      });
    return c.json({ revision: await full(store().arm(c.var.caller.site, entry)) });
  });

  app.delete('/arms/:mac', async (c) => {
    const workflowId = c.req.query('workflow_id');
    return c.json(await store().disarm(c.var.caller.site, macParam(c), workflowId || undefined));
  });

  app.get('/claims', async (c) => {
    const claim = await store().claim(c.var.caller.site, claimKey(c.req.query('key')));
    return claim ? c.json(claim) : c.json({ error: 'no such claim' }, 404);
  });

  app.put('/claims', async (c) => {
    const key = claimKey(c.req.query('key'));
    const begin = await body(c, ClaimBeginSchema, 'claim');
    await full(
      store().begin(c.var.caller.site, {
        key,
        mac: begin.mac,
        begun: begin.at,
        ...(begin.agent ? { agent: begin.agent } : {}),
      }),
    );
    return c.json({ key, state: 'in-doubt', since: begin.at });
  });

  app.post('/claims/done', async (c) => {
    const key = claimKey(c.req.query('key'));
    if (!(await store().done(c.var.caller.site, key, new Date().toISOString())))
      return c.json({ error: 'no such claim' }, 404);
    return c.json({ key, state: 'done' });
  });

  app.post('/seen', async (c) => {
    const report = await body(c, SeenReportSchema, 'boot traffic report');
    return c.json({ marked: await store().seen(c.var.caller.site, report.seen) });
  });
  return app;
}
