// POST /postreceive/:hook: GitHub webhooks of the SoT sources. A push to a source's branch starts
// applyCommitWorkflow as apply/<sha>, so GitHub's redeliveries start nothing new.
import { Webhooks } from '@octokit/webhooks';
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import { z } from 'zod';
import { startApply } from '../apply';
import { sourceDir, type HookedSource } from '../config';
import type { AppDeps, AppEnv } from './deps';
import { childLog, type Log } from './log';

/** The fields of GitHub's push payload that decide what to do; the rest is not read. */
const PushPayloadSchema = z.object({
  ref: z.string(),
  after: z.string().regex(/^([0-9a-f]{40}|[0-9a-f]{64})$/, 'must be a commit SHA'),
  deleted: z.boolean().optional(),
  repository: z.object({ full_name: z.string() }),
});
type PushPayload = z.infer<typeof PushPayloadSchema>;

interface Hook {
  source: HookedSource;
  webhooks: Webhooks;
}

function hooksOf(deps: AppDeps): Map<string, Hook> {
  const hooks = new Map<string, Hook>();
  for (const source of deps.config.sources) {
    if (source.kind === 'local') continue;
    const secret = deps.secrets.webhooks.get(source.name);
    if (!secret) throw new Error(`no webhook secret resolved for source ${source.name}`);
    hooks.set(source.name, { source, webhooks: new Webhooks({ secret }) });
  }
  return hooks;
}

function parseJson(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    throw new HTTPException(400, { message: 'the payload is not JSON' });
  }
}

/** Why a push is not applied, or undefined when it is. */
function ignoredBecause(source: HookedSource, push: PushPayload): string | undefined {
  if (source.kind === 'github' && push.repository.full_name.toLowerCase() !== source.repo.toLowerCase())
    return `a push to ${push.repository.full_name}; this hook watches ${source.repo}`;
  if (push.ref !== `refs/heads/${source.branch}`)
    return `a push to ${push.ref}; this hook applies refs/heads/${source.branch}`;
  if (push.deleted || /^0+$/.test(push.after)) return `${push.ref} was deleted`;
  return undefined;
}

/** The parsed payload of a delivery signed with the hook's secret; refusals are logged without it. */
async function verifiedPayload(webhooks: Webhooks, body: string, signature: string | undefined, log: Log) {
  if (!signature) {
    log.warn({}, 'webhook refused: no X-Hub-Signature-256');
    throw new HTTPException(401, { message: 'missing X-Hub-Signature-256' });
  }
  if (!body || !(await webhooks.verify(body, signature))) {
    log.warn({}, 'webhook refused: signature does not match');
    throw new HTTPException(401, { message: 'X-Hub-Signature-256 does not match the payload' });
  }
  return parseJson(body);
}

async function applyPush(
  deps: AppDeps,
  source: HookedSource,
  push: { commit: string; delivery?: string },
  log: Log,
) {
  const { commit, delivery } = push;
  const started = await startApply(
    deps,
    { commit, source: sourceDir(source), ...(delivery ? { delivery } : {}) },
    'push',
  );
  const { workflowId } = started;
  if (started.status === 'duplicate') {
    log.info({ workflowId }, 'push already applied: redelivery');
    return { code: 200, body: started } as const;
  }
  // 409: GitHub lists it as not delivered, and the reason says what an operator may do about it.
  if (started.status === 'stale') {
    log.warn({ commit, reason: started.reason }, 'push refused: older than the applied commit');
    return { code: 409, body: started } as const;
  }
  log.info({ workflowId }, 'push applied: workflow started');
  return { code: 202, body: started } as const;
}

/** One delivery, verified; what it became is recorded in `webhookOutcome` for the metrics. */
async function deliver(deps: AppDeps, c: Context<AppEnv>, hook: Hook) {
  const { source, webhooks } = hook;
  const name = source.name;
  const event = c.req.header('x-github-event');
  const log = c.var.log;
  // The delivery id is what GitHub's "Recent deliveries" page shows, to match log lines to it.
  const fields = { hook: name, event, delivery: c.req.header('x-github-delivery') };
  const contentType = c.req.header('content-type') ?? '';
  if (!contentType.includes('json'))
    throw new HTTPException(415, { message: 'set the webhook content type to application/json' });
  const payload = await verifiedPayload(
    webhooks,
    await c.req.text(),
    c.req.header('x-hub-signature-256'),
    childLog(log, fields),
  );
  const outcome = (o: string) => c.set('webhookOutcome', o);
  if (event === 'ping') {
    outcome('pong');
    return c.json({ status: 'pong', hook: name });
  }
  if (event === 'pull_request') {
    if (!deps.pullRequests) {
      outcome('ignored');
      return c.json(
        { status: 'ignored', reason: 'pull requests are not checked: github.token is not set' },
        202,
      );
    }
    const checked = deps.pullRequests.check(source, payload, childLog(log, fields));
    outcome(checked.status);
    return c.json(checked, 202);
  }
  if (event !== 'push') {
    log.info(fields, 'webhook ignored: not a push or pull_request');
    outcome('ignored');
    return c.json({ status: 'ignored', reason: `event ${event ?? '(none)'} is not handled` }, 202);
  }
  const push = PushPayloadSchema.safeParse(payload);
  if (!push.success)
    throw new HTTPException(400, { message: `not a push payload: ${push.error.issues[0]?.message}` });
  const reason = ignoredBecause(source, push.data);
  if (reason) {
    log.info({ ...fields, ref: push.data.ref }, 'webhook ignored');
    outcome('ignored');
    return c.json({ status: 'ignored', reason }, 202);
  }
  const delivery = fields.delivery?.slice(0, 100);
  const started = await applyPush(deps, source, { commit: push.data.after, delivery }, childLog(log, fields));
  outcome(started.body.status);
  return c.json(started.body, started.code);
}

/** Events with a meaning here keep their name; any other header value, sent by anyone, is `other`. */
const LABELLED_EVENTS = new Set(['push', 'pull_request', 'ping']);
const eventLabel = (event: string | undefined) =>
  event === undefined ? '(none)' : LABELLED_EVENTS.has(event) ? event : 'other';

export function webhookRoutes(deps: AppDeps): Hono<AppEnv> {
  const hooks = hooksOf(deps);
  const app = new Hono<AppEnv>();
  const hookOf = (name: string): Hook => {
    const hook = hooks.get(name);
    if (!hook) throw new HTTPException(404, { message: `no webhook ${name}` });
    return hook;
  };
  const limit = deps.config.webhook_body_limit;

  app.post(
    '/:hook',
    async (c, next) => {
      const hook = hookOf(c.req.param('hook'));
      const count = (outcome: string) =>
        deps.metrics?.webhookDeliveries.inc({
          hook: hook.source.name,
          event: eventLabel(c.req.header('x-github-event')),
          outcome,
        });
      // Only the leader acts on deliveries; GitHub shows a 5xx as failed, to redeliver, and a load
      // balancer that checks /ready sends deliveries to the leader in the first place.
      if (deps.leadership && !deps.leadership.isLeader()) {
        count('not_leader');
        c.header('Retry-After', '5');
        return c.json({ error: 'this server is not the leader; deliver to the leader' }, 503);
      }
      await next();
      count(c.get('webhookOutcome') ?? `refused_${c.res.status}`);
    },
    bodyLimit({
      maxSize: limit,
      onError: (c) => c.json({ error: `the payload is larger than ${limit} bytes` }, 413),
    }),
    (c) => deliver(deps, c, hookOf(c.req.param('hook'))),
  );
  return app;
}
