// The agent API as the server mounts it, for tests: one token per site of examples/sot, the user
// API's token for the agents list, and the app's error handling.
import { Hono } from 'hono';
import type { BootStateStore } from '../../activities/store/boot-state-store';
import type { ModelStore } from '../../activities/store/model-store';
import { createAgentRegistry } from '../../server/agent-registry';
import { agentApiRoutes, agentStatusRoutes } from '../../server/http/agent-api';
import type { AppEnv } from '../../server/http/deps';
import { httpError } from '../../server/http/errors';
import { API_TOKEN, memoryLog } from './server-http';

export const AGENT_TOKENS = { fra1: 'vaq_agent_fra1_5f0c2e', iad1: 'vaq_agent_iad1_a93b71' } as const;

export const authHeader = (token: string) => ({ authorization: `Bearer ${token}` });

export function agentApp(
  store: ModelStore | undefined,
  options: { unreachableAfterS?: number; bootState?: BootStateStore } = {},
) {
  const { log, lines } = memoryLog();
  const registry = createAgentRegistry({ silentAfterMs: (options.unreachableAfterS ?? 60) * 1000 });
  const app = new Hono<AppEnv>();
  app.use(async (c, next) => {
    c.set('log', log);
    await next();
  });
  app.route(
    '/agent/v1',
    agentApiRoutes({
      tokens: Object.entries(AGENT_TOKENS).map(([site, token]) => ({ site, name: `${site}-agents`, token })),
      store,
      registry,
      ...(options.bootState ? { bootState: options.bootState } : {}),
    }),
  );
  app.route('/api/v1', agentStatusRoutes(registry, [{ name: 'ops', token: API_TOKEN }]));
  app.onError((err, c) => {
    const { status, message } = httpError(err);
    return c.json({ error: message }, status);
  });
  return { app, lines, registry };
}
