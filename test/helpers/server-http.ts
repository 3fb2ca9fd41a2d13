// The server's HTTP app for tests: a config with one git source and one API token, GitHub-shaped
// webhook payloads signed as GitHub signs them, and a log that keeps its lines.
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { parseServerConfig, type Secrets, type ServerConfigInput } from '../../server/config';
import { createApp } from '../../server/http/app';
import type { Log } from '../../server/http/log';

export const HOOK = 'lab';
export const WEBHOOK_SECRET = 'It’s a Secret to Everybody';
export const API_TOKEN = 'vaq_test_0123456789abcdef';
export const REPO = 'vaquero-lab/sot';

export interface LogLine {
  level: string;
  msg: string;
  fields: Record<string, unknown>;
}

export function memoryLog(): { log: Log; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: string) => (fields: Record<string, unknown>, msg: string) =>
    void lines.push({ level, msg, fields });
  return { log: { info: at('info'), warn: at('warn'), error: at('error') }, lines };
}

export function testApp(temporal: Client, sourceRepo: string, config: Partial<ServerConfigInput> = {}) {
  const { log, lines } = memoryLog();
  const parsed = parseServerConfig({
    temporal: { namespace: temporal.options.namespace },
    sources: [
      {
        name: HOOK,
        kind: 'git',
        repo: sourceRepo,
        branch: 'main',
        path: 'sot',
        webhook_secret: { env: 'VAQUERO_TEST_WEBHOOK_SECRET' },
      },
    ],
    api: { tokens: [{ name: 'ops', token: { env: 'VAQUERO_TEST_API_TOKEN' } }] },
    ...config,
  });
  const secrets: Secrets = {
    webhooks: new Map([[HOOK, WEBHOOK_SECRET]]),
    apiTokens: [{ name: 'ops', token: API_TOKEN }],
  };
  return { app: createApp({ config: parsed, secrets, temporal, log }), lines, config: parsed };
}

export const randomSha = () => randomBytes(20).toString('hex');

/** `X-Hub-Signature-256` as GitHub computes it: HMAC-SHA256 of the raw body with the hook's secret. */
export function signature(body: string, secret = WEBHOOK_SECRET): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** A push event payload as GitHub sends it (trimmed of the URL fields nobody reads). */
export function pushPayload(after: string, options: { ref?: string; before?: string } = {}) {
  const before = options.before ?? randomSha();
  const [owner, name] = REPO.split('/');
  const pusher = { name: 'octocat', email: 'octocat@example.net' };
  const headCommit = {
    id: after,
    tree_id: randomSha(),
    distinct: true,
    message: 'sites/sim1: approval before the edge wave',
    timestamp: '2026-11-28T01:58:12+00:00',
    url: `https://github.com/${REPO}/commit/${after}`,
    author: { ...pusher, username: 'octocat' },
    committer: { name: 'GitHub', email: 'noreply@github.com', username: 'web-flow' },
    added: [],
    removed: [],
    modified: ['sot/sites/sim1/site.yaml'],
  };
  return {
    ref: options.ref ?? 'refs/heads/main',
    before,
    after,
    repository: {
      id: 812_345_678,
      node_id: 'R_kgDOMG7xzg',
      name,
      full_name: REPO,
      private: true,
      owner: { name: owner, login: owner, id: 98_765_432, type: 'Organization' },
      html_url: `https://github.com/${REPO}`,
      default_branch: 'main',
      pushed_at: 1_795_831_092,
    },
    pusher,
    sender: { login: 'octocat', id: 583_231, type: 'User' },
    created: false,
    deleted: false,
    forced: false,
    base_ref: null,
    compare: `https://github.com/${REPO}/compare/${before.slice(0, 12)}...${after.slice(0, 12)}`,
    commits: [headCommit],
    head_commit: headCommit,
  };
}

export const pingPayload = () => ({
  zen: 'Keep it logically awesome.',
  hook_id: 512_345_678,
  hook: { type: 'Repository', id: 512_345_678, active: true, events: ['push', 'pull_request'] },
  repository: { full_name: REPO },
  sender: { login: 'octocat' },
});

/** The headers GitHub sends with a delivery; `signature: null` leaves the signature out. */
export function githubHeaders(event: string, body: string, sig: string | null = signature(body)) {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': 'GitHub-Hookshot/8f3ac1b',
    'x-github-event': event,
    'x-github-delivery': randomUUID(),
    'x-github-hook-id': '512345678',
  };
  if (sig !== null) headers['x-hub-signature-256'] = sig;
  return headers;
}
