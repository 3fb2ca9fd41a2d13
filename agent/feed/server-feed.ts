// The agent's side of /agent/v1: a ModelFeed over HTTPS that trusts the server only when its
// certificate chains to the given CA (the dev CA of `vaquero certs`, or the operator's), plus
// heartbeats. Every failure is an Error whose message says what to fix; the agent keeps serving
// from its cache and tries again.
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';
import type { ModelFeed, SiteRevision } from './model-feed';
import { ModelSchema } from '../../schemas/model';
import type { AgentHeartbeat } from '../../schemas/agent';

export interface ServerFeedOptions {
  /** The server's base URL, e.g. https://vaquero.example.net:8443. */
  url: string;
  token: string;
  site: string;
  /** PEM of the CA that signed the server's certificate; default: the system's CAs. */
  ca?: string;
  timeoutMs?: number;
}

export interface ServerFeed extends ModelFeed {
  heartbeat(info: Omit<AgentHeartbeat, 'site'>): Promise<void>;
  /** Any other /agent/v1 call (agent/state/site-boot-client.ts); `path` may carry a query. */
  request(method: AgentApiMethod, path: string, body?: unknown, timeoutMs?: number): Promise<Reply>;
  /** The error to throw for an answer that is not the one expected. */
  failure(reply: Reply, what: string): Error;
  /** Closes the kept-alive connections. */
  close(): void;
}

/** TLS errors worth a sentence: an operator sees these when the CA or the hostname is wrong. */
const TLS_HINTS: Record<string, string> = {
  SELF_SIGNED_CERT_IN_CHAIN: 'the server certificate is not signed by the configured CA',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'the server certificate is not signed by the configured CA',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'the server certificate is self-signed and not the configured CA',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'the server certificate is not signed by the configured CA',
  CERT_HAS_EXPIRED: 'the server certificate has expired',
  ERR_TLS_CERT_ALTNAME_INVALID:
    'the server certificate does not name this host (check --hosts of vaquero certs)',
};

class ServerError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'ServerError';
  }
}

export interface Reply {
  status: number;
  body: unknown;
}

export type AgentApiMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

function readReply(res: IncomingMessage): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('error', reject);
    res.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // not JSON: kept as text for the error message
      }
      resolve({ status: res.statusCode ?? 0, body });
    });
  });
}

export function createServerFeed(options: ServerFeedOptions): ServerFeed {
  const base = new URL(options.url);
  if (base.protocol !== 'https:' && base.protocol !== 'http:')
    throw new Error(`server url ${options.url}: expected https://host:port`);
  const tls = base.protocol === 'https:';
  const agent = tls ? new Agent({ keepAlive: true, ...(options.ca ? { ca: options.ca } : {}) }) : undefined;
  const timeoutMs = options.timeoutMs ?? 10_000;
  // A long poll in flight would keep a stopping agent's process alive for its whole timeout.
  const inFlight = new Set<ClientRequest>();

  const call = (method: AgentApiMethod, path: string, body?: unknown, ms = timeoutMs): Promise<Reply> =>
    new Promise((resolve, reject) => {
      const url = new URL(`agent/v1${path}`, base.href.endsWith('/') ? base.href : `${base.href}/`);
      url.searchParams.set('site', options.site);
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const headers: Record<string, string> = {
        authorization: `Bearer ${options.token}`,
        accept: 'application/json',
      };
      if (payload) headers['content-type'] = 'application/json';
      const req = (tls ? httpsRequest : httpRequest)(
        url,
        { method, headers, agent, timeout: ms },
        (res) => void readReply(res).then(resolve, reject),
      );
      inFlight.add(req);
      req.once('close', () => inFlight.delete(req));
      req.on('timeout', () => req.destroy(new Error(`no answer in ${ms} ms`)));
      req.on('error', (err: NodeJS.ErrnoException) => {
        const hint = err.code ? TLS_HINTS[err.code] : undefined;
        const why = hint ? `${hint} (${err.code})` : err.message;
        reject(new ServerError(`cannot reach the server at ${base.origin}: ${why}`));
      });
      req.end(payload);
    });

  const failure = (reply: Reply, what: string): ServerError => {
    const said = (reply.body as { error?: unknown } | undefined)?.error;
    const message = typeof said === 'string' ? said : `HTTP ${reply.status}`;
    return new ServerError(`${what}: the server answered ${reply.status}: ${message}`, reply.status);
  };

  const revisionAt = async (path: string, what: string): Promise<SiteRevision | undefined> => {
    const reply = await call('GET', path);
    if (reply.status === 404) return undefined;
    if (reply.status !== 200) throw failure(reply, what);
    const body = reply.body as { commit?: unknown; model?: unknown };
    if (typeof body.commit !== 'string') throw new ServerError(`${what}: the answer has no commit`);
    return { commit: body.commit, model: ModelSchema.parse(body.model) };
  };

  return {
    current: () => revisionAt('/model', `site ${options.site}'s model`),
    revision: (commit) => revisionAt(`/model/${encodeURIComponent(commit)}`, `revision ${commit}`),
    async heartbeat(info) {
      const reply = await call('POST', '/heartbeat', { ...info, site: options.site });
      if (reply.status !== 200) throw failure(reply, 'heartbeat');
    },
    request: call,
    failure,
    close() {
      for (const req of inFlight) req.destroy(new Error('the agent is stopping'));
      agent?.destroy();
    },
  };
}
