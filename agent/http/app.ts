import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { requestId, type RequestIdVariables } from 'hono/request-id';
import { BootRefused, loggedPath } from './boot-guard';
import { bootRoutes } from './boot-routes';
import { cdnRoutes } from './cdn';
import type { AssetAppDeps } from './deps';
import { fileRoutes, sentStatus } from './files';

export type { AssetAppDeps, AssetLog, ModelSource, NetbootLookup } from './deps';

/**
 * The agent's HTTP boot server: chain script, per-host iPXE scripts, unattended configs, boot files
 * and checkpoint callbacks. It reads the netboot table and models and reports what hosts fetched to
 * `events`; it knows nothing of Temporal.
 */
export function createAssetApp(deps: AssetAppDeps) {
  const app = new Hono<{ Variables: RequestIdVariables }>();
  app.use(requestId());
  app.use(async (c, next) => {
    const started = performance.now();
    await next();
    const status = sentStatus(c);
    deps.log({
      level: status >= 500 ? 'error' : 'info',
      msg: `${c.req.method} ${loggedPath(new URL(c.req.url).pathname)} ${status}`,
      reqId: c.get('requestId'),
      ms: Math.round(performance.now() - started),
    });
  });
  app.route('/', bootRoutes(deps));
  app.route('/', fileRoutes(deps));
  if (deps.cdn) app.route('/', cdnRoutes({ ...deps.cdn, log: deps.log }));
  app.notFound((c) => c.text('not found\n', 404));
  app.onError((err, c) => {
    // A refusal was logged with its reason where it was found; the client learns only the status.
    if (err instanceof BootRefused) return c.text('forbidden\n', 403);
    const status = err instanceof HTTPException ? err.status : 500;
    deps.log({
      level: status >= 500 ? 'error' : 'warn',
      msg: err.message,
      reqId: c.get('requestId'),
      path: loggedPath(new URL(c.req.url).pathname),
    });
    // A boot client only needs the status; the reason is in the agent's log under the request id.
    return c.text(status >= 500 ? 'internal error\n' : `${err.message}\n`, status);
  });
  return app;
}
