// POST /api/v1/apply: an operator applies one commit of a source, the only way (with `force`) past
// the Git order check: a rollback, or a history rewritten by a force-push.
import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { ApplyRequestSchema } from '../../schemas/applied';
import { ensureCommit, resolveRevision } from '../../sot/git-checkout';
import { startApply } from '../apply';
import { sourceDir, type SotSource } from '../config';
import type { AppDeps, AppEnv } from './deps';

function sourceOf(deps: AppDeps, name: string | undefined): SotSource {
  const { sources } = deps.config;
  if (name === undefined && sources.length === 1 && sources[0]) return sources[0];
  const source = sources.find((s) => s.name === name);
  if (source) return source;
  const names = sources.map((s) => s.name).join(', ');
  throw new HTTPException(name === undefined ? 400 : 404, {
    message: name === undefined ? `name the source: one of ${names}` : `no source ${name} (${names})`,
  });
}

function bodyOf(text: string) {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new HTTPException(400, { message: 'the request body is not JSON' });
  }
  const parsed = ApplyRequestSchema.safeParse(json);
  if (!parsed.success)
    throw new HTTPException(400, {
      message: `invalid body: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`,
    });
  return parsed.data;
}

export function applyRoutes(deps: AppDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.post('/apply', async (c) => {
    const request = bodyOf(await c.req.text());
    const source = sourceOf(deps, request.source);
    const dir = sourceDir(source);
    if (!(await ensureCommit(dir, request.commit).catch(() => false)))
      throw new HTTPException(404, { message: `${request.commit}: not in ${dir} nor on its remotes` });
    const commit = await resolveRevision(dir, request.commit);
    const started = await startApply(deps, { commit, source: dir, force: request.force }, 'operator');
    c.var.log.info({ ...started, force: request.force ?? false }, `operator apply: ${started.status}`);
    const code = started.status === 'started' ? 202 : started.status === 'stale' ? 409 : 200;
    return c.json(started, code);
  });
  return app;
}
