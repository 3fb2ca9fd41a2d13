// /api/v1 routes over model revisions: sites, hosts with their last reprovision's state, plans
// between two revisions, and the revisions themselves (one per applied SoT commit).
import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { z } from 'zod';
import { planChanges } from '../../sot/plan';
import type { ModelStore } from '../../activities/store/model-store';
import { bootInterface } from '../../schemas/host';
import type { Model } from '../../schemas/model';
import { queryAllHosts, type Temporal } from '../rollouts/rollout-client';
import type { AppDeps, AppEnv } from './deps';
import { own } from '../../schemas/common';

const CommitSchema = z.string().regex(/^[0-9a-zA-Z._-]{7,64}$/, 'must be a commit SHA');
export const PlanQuerySchema = z.object({ to: CommitSchema, from: CommitSchema.optional() });

function valid<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((i) => `${i.path.join('.') || what}: ${i.message}`);
  throw new HTTPException(400, { message: `invalid ${what}: ${issues.join('; ')}` });
}

async function revision(store: ModelStore, commit: string): Promise<Model> {
  const model = await store.getRevision(valid(CommitSchema, commit, 'commit'));
  if (!model) throw new HTTPException(404, { message: `no model revision for commit ${commit}` });
  return model;
}

async function applied(store: ModelStore): Promise<{ commit: string; model: Model }> {
  const commit = await store.getApplied();
  if (!commit) throw new HTTPException(404, { message: 'no commit has been applied yet' });
  return { commit, model: await revision(store, commit) };
}

/** A site's hosts in the applied revision, each with its last reprovision by the site's last rollout. */
async function siteHosts(store: ModelStore, t: Temporal, siteId: string) {
  const { commit, model } = await applied(store);
  const site = own(model.sites, siteId);
  if (!site) throw new HTTPException(404, { message: `no site ${siteId} in commit ${commit}` });
  // The last rollout of the site knows each host's last reprovision; hosts it did not touch have none.
  const active = await store.getActiveRollout(siteId);
  const status = active
    ? await queryAllHosts(t, t.client.workflow.getHandle(active.workflowId)).catch(() => undefined)
    : undefined;
  const hosts = site.hosts.map((h) => {
    const iface = bootInterface(h);
    const progress = status ? own(status.hosts, h.name) : undefined;
    return {
      name: h.name,
      group: h.group,
      mac: iface.mac,
      ipv4: iface.ipv4,
      never_provision: h.never_provision,
      lastReprovision:
        progress && active
          ? {
              rollout: active.workflowId,
              commit: active.commit,
              state: progress.state,
              step: progress.step,
              error: progress.error,
            }
          : null,
    };
  });
  return { site: siteId, commit, hosts };
}

export function modelRoutes(deps: AppDeps, t: Temporal): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const storeOf = () => {
    if (!deps.store) throw new HTTPException(503, { message: 'this server has no model store' });
    return deps.store;
  };

  app.get('/sites', async (c) => {
    const { commit, model } = await applied(storeOf());
    const sites = Object.values(model.sites).map(({ site, hosts }) => ({
      id: site.id,
      name: site.name,
      hosts: hosts.length,
      agents: site.agents.map((a) => a.name),
    }));
    return c.json({ commit, sites });
  });

  app.get('/sites/:site/hosts', async (c) => c.json(await siteHosts(storeOf(), t, c.req.param('site'))));

  app.get('/plan', async (c) => {
    const store = storeOf();
    const query = valid(PlanQuerySchema, c.req.query(), 'query');
    const from = query.from ?? (await store.getApplied());
    const after = await revision(store, query.to);
    // A plan to the applied commit itself changes nothing; only a store with no applied commit plans all.
    const before = from === undefined ? undefined : from === query.to ? after : await revision(store, from);
    return c.json(planChanges(before, after, from ?? '(nothing applied)', query.to));
  });

  app.get('/revisions', async (c) => {
    const revisions = [];
    const query = "WorkflowType = 'applyCommitWorkflow'";
    for await (const wf of t.client.workflow.list({ query })) {
      revisions.push({
        commit: wf.workflowId.replace(/^apply\//, ''),
        workflowId: wf.workflowId,
        execution: wf.status.name,
        startTime: wf.startTime.toISOString(),
      });
      if (revisions.length >= 100) break;
    }
    return c.json({ applied: (await storeOf().getApplied()) ?? null, revisions });
  });

  app.get('/revisions/:commit', async (c) => c.json(await revision(storeOf(), c.req.param('commit'))));
  return app;
}
