import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { requestId, type RequestIdVariables } from 'hono/request-id';
import { BootRefused, loggedPath } from './boot-guard';
import { bootRoutes } from './boot-routes';
import { cdnRoutes } from './cdn';
import type { AssetAppDeps } from './deps';
import { fileRoutes } from './files';

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
    const status = c.res.status;
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
    const { status, text } = errorReply(deps, err, c.get('requestId'), new URL(c.req.url).pathname);
    return c.text(text, status);
  });
  return app;
}

/**
 * The answer to a failed request, logged: a refusal was logged with its reason where it was found and
 * the client learns only the status; otherwise the reason is logged under the request id, and a boot
 * client only needs the status (the text of a 4xx, no detail of a 5xx).
 */
export function errorReply(
  deps: Pick<AssetAppDeps, 'log'>,
  err: Error,
  reqId: string | undefined,
  pathname: string,
): { status: ContentfulStatusCode; text: string } {
  if (err instanceof BootRefused) return { status: 403, text: 'forbidden\n' };
  const status = err instanceof HTTPException ? err.status : 500;
  deps.log({ level: status >= 500 ? 'error' : 'warn', msg: err.message, reqId, path: loggedPath(pathname) });
  return { status, text: status >= 500 ? 'internal error\n' : `${err.message}\n` };
}
