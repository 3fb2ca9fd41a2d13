// The server's HTTP side: GitHub webhooks, the user API, and the probes, in one Hono app that knows
// Temporal only through the client it is given.
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { requestId } from 'hono/request-id';
import { routePath } from 'hono/route';
import { agentRoutes } from './agent-api';
import { apiRoutes } from './api';
import type { AppDeps, AppEnv } from './deps';
import { httpError } from './errors';
import { childLog } from './log';
import { webhookRoutes } from './webhooks';

const READY_TIMEOUT_MS = 2_000;
/** Label values come from closed sets: a client that invents methods adds no series to /metrics. */
const HTTP_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
/**
 * The user and agent APIs take small JSON objects (a signal's reason, a heartbeat): a larger body is
 * refused before it is read, so nobody holds the server's memory with one request.
 */
export const API_BODY_LIMIT = 64 * 1024;

const apiBodyLimit = bodyLimit({
  maxSize: API_BODY_LIMIT,
  onError: (c) => c.json({ error: `the request body is larger than ${API_BODY_LIMIT} bytes` }, 413),
});

export function createApp(deps: AppDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use(requestId());
  app.use(async (c, next) => {
    const log = childLog(deps.log, { reqId: c.var.requestId });
    c.set('log', log);
    const started = performance.now();
    await next();
    const ms = Math.round(performance.now() - started);
    log.info({ method: c.req.method, path: c.req.path, status: c.res.status, ms }, 'request');
    // The route pattern, not the path: a label per distinct path would grow without bound.
    const route = routePath(c, -1);
    deps.metrics?.httpRequests.inc({
      method: HTTP_METHODS.has(c.req.method) ? c.req.method : 'other',
      route: route === '/*' || route === '*' ? '(unmatched)' : route,
      status: c.res.status,
    });
  });

  app.get('/live', (c) => c.json({ status: 'live' }));
  // Ready only on the leader, and only while Temporal answers (docs/ha.md); a load balancer that checks
  // /ready sends webhooks and API calls to the leader.
  app.get('/ready', async (c) => {
    if (deps.leadership && !deps.leadership.isLeader())
      return c.json({ status: 'not ready', reason: 'not the leader' }, 503);
    const { namespace } = deps.temporal.options;
    try {
      await deps.temporal.withDeadline(Date.now() + READY_TIMEOUT_MS, () =>
        deps.temporal.workflowService.describeNamespace({ namespace }),
      );
      return c.json({ status: 'ready' });
    } catch (err) {
      c.var.log.warn({ error: (err as Error).message }, 'not ready: Temporal does not answer');
      return c.json({ status: 'not ready', reason: 'Temporal does not answer' }, 503);
    }
  });

  // Unauthenticated like the probes: read-only counters with no names of hosts or tokens
  // (docs/api.md, "Metrics"); keep the port off the internet.
  app.get('/metrics', async (c) => {
    if (!deps.metrics) return c.json({ error: 'metrics are not enabled' }, 404);
    const { registry } = deps.metrics;
    return c.body(await registry.metrics(), 200, { 'content-type': registry.contentType });
  });

  app.use('/api/v1/*', apiBodyLimit);
  app.use('/agent/v1/*', apiBodyLimit);
  app.route('/postreceive', webhookRoutes(deps));
  app.route('/api/v1', apiRoutes(deps));
  app.route('/', agentRoutes(deps));

  app.notFound((c) => c.json({ error: `no route ${c.req.method} ${c.req.path}` }, 404));
  app.onError((err, c) => {
    const { status, message, internal } = httpError(err);
    const log = c.get('log') ?? deps.log;
    if (internal) log.error({ status, error: err.message, stack: err.stack }, 'request failed');
    return c.json({ error: message, requestId: c.get('requestId') }, status);
  });
  return app;
}
