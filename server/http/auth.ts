// Bearer tokens of the user API. A request without a token is 401 (with a challenge); a token that is
// not one of the configured ones is 403.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from './deps';

const digest = (token: string) => createHash('sha256').update(token).digest();

export function bearerAuth(tokens: readonly { name: string; token: string }[]): MiddlewareHandler<AppEnv> {
  // Digests have one length, so timingSafeEqual compares without leaking a token's length.
  const known = tokens.map((t) => ({ name: t.name, digest: digest(t.token) }));
  return async (c, next) => {
    const match = /^Bearer +(\S+) *$/i.exec(c.req.header('authorization') ?? '');
    const presented = match?.[1];
    if (!presented)
      return c.json({ error: 'a bearer token is required (Authorization: Bearer <token>)' }, 401, {
        'WWW-Authenticate': 'Bearer realm="vaquero"',
      });
    const d = digest(presented);
    let name: string | undefined;
    for (const k of known) if (timingSafeEqual(d, k.digest)) name = k.name;
    if (!name) {
      c.var.log.warn({ path: c.req.path }, 'API request refused: unknown token');
      return c.json({ error: 'the bearer token is not accepted' }, 403);
    }
    c.var.log.info({ token: name }, 'API caller');
    await next();
  };
}
