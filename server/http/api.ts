// /api/v1: rollouts (list, status, and the same commands as `vaquero rollout`), behind bearer tokens.
import type { WorkflowExecutionInfo } from '@temporalio/client';
import { Hono, type Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { z } from 'zod';
import { rolloutWorkflowId } from '../../schemas/rollout';
import { CommitAttribute, PhaseAttribute, SiteAttribute } from '../../schemas/search-attributes';
import {
  listRollouts,
  queryStatus,
  ROLLOUT_WORKFLOW_TYPE,
  type Rollout,
  type Temporal,
} from '../rollouts/rollout-client';
import { runRolloutCommand } from '../rollouts/commands';
import {
  ListRolloutsQuerySchema,
  StatusPageQuerySchema,
  RolloutParamsSchema,
  RolloutSignalSchema,
  SIGNAL_BODIES,
  type RolloutSummary,
} from '../../schemas/api';
import { bearerAuth } from './auth';
import type { AppDeps, AppEnv } from './deps';
import { applyRoutes } from './apply-api';
import { modelRoutes } from './model-api';
import { openApiDocument } from './openapi';

function valid<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((i) => `${i.path.join('.') || what}: ${i.message}`);
  throw new HTTPException(400, { message: `invalid ${what}: ${issues.join('; ')}` });
}

/**
 * A JSON object body. Empty, whitespace or any other JSON value is refused: a signal is sent only
 * when the caller clearly asked for it (`-d '{}'` when there is nothing to add).
 */
async function jsonBody(c: Context<AppEnv>): Promise<Record<string, unknown>> {
  const text = await c.req.text();
  if (!text.trim())
    throw new HTTPException(400, {
      message: "the request body is empty: send a JSON object ('{}' for none)",
    });
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new HTTPException(400, { message: 'the request body is not JSON' });
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new HTTPException(400, { message: 'the request body must be a JSON object' });
  return body as Record<string, unknown>;
}

function summaryOf(info: WorkflowExecutionInfo): RolloutSummary {
  const attrs = info.typedSearchAttributes;
  return {
    workflowId: info.workflowId,
    site: attrs.get(SiteAttribute) ?? info.workflowId.split('/')[1] ?? '',
    commit: attrs.get(CommitAttribute) ?? '',
    phase: attrs.get(PhaseAttribute) ?? 'unknown',
    execution: info.status.name,
    startTime: info.startTime.toISOString(),
    closeTime: info.closeTime?.toISOString(),
  };
}

async function rolloutOf(t: Temporal, params: unknown): Promise<Rollout> {
  const { site, sha7 } = valid(RolloutParamsSchema, params, 'path');
  const workflowId = rolloutWorkflowId(site, sha7);
  const handle = t.client.workflow.getHandle(workflowId);
  const description = await handle.describe();
  if (description.type !== ROLLOUT_WORKFLOW_TYPE)
    throw new HTTPException(404, { message: `${workflowId} is not a rollout` });
  return { workflowId, handle, description };
}

export function apiRoutes(deps: AppDeps): Hono<AppEnv> {
  const t: Temporal = {
    client: deps.temporal,
    address: deps.config.temporal.address,
    namespace: deps.temporal.options.namespace,
    close: () => Promise.resolve(),
  };
  const app = new Hono<AppEnv>();
  app.use(bearerAuth(deps.secrets.apiTokens));

  app.get('/openapi.json', (c) => c.json(openApiDocument()));

  app.get('/rollouts', async (c) => {
    const query = valid(ListRolloutsQuerySchema, c.req.query(), 'query');
    const infos = await listRollouts(t, { site: query.site, all: query.all === 'true' });
    return c.json({ rollouts: infos.map(summaryOf) });
  });

  app.get('/rollouts/:site/:sha7/status', async (c) => {
    const rollout = await rolloutOf(t, c.req.param());
    const page = valid(StatusPageQuerySchema, c.req.query(), 'query');
    const status = await queryStatus(t, rollout.handle, undefined, page);
    const { runId, startTime, closeTime } = rollout.description;
    return c.json({
      workflowId: rollout.workflowId,
      runId,
      execution: rollout.description.status.name,
      startTime: startTime.toISOString(),
      closeTime: closeTime?.toISOString(),
      ...status,
    });
  });

  // The command as an Update: 200 with the rollout's new state, or 409 with the rollout's refusal.
  app.post('/rollouts/:site/:sha7/:signal', async (c) => {
    const signal = valid(RolloutSignalSchema, c.req.param('signal'), 'signal');
    const body = valid<unknown>(SIGNAL_BODIES[signal], await jsonBody(c), 'body');
    const rollout = await rolloutOf(t, { site: c.req.param('site'), sha7: c.req.param('sha7') });
    const outcome = await runRolloutCommand(t, rollout, signal, body as never);
    c.var.log.info({ workflowId: rollout.workflowId, signal, phase: outcome.phase }, 'command done');
    return c.json({ status: 'done', signal, workflowId: rollout.workflowId, rollout: outcome }, 200);
  });
  app.route('/', modelRoutes(deps, t));
  app.route('/', applyRoutes(deps));
  return app;
}
