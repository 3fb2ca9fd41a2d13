// HTTP(S) to a Redfish service: one request with the deadline of the driver call, bounded retries,
// typed failures, and the session that the call's requests carry.
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { Bmc } from '../../schemas/host';
import { PowerError } from './errors';
import type { PowerErrorKind } from './errors';
import { networkError, statusError, timeoutError } from './redfish-errors';
import type { RequestPhase } from './redfish-errors';

export type RedfishBmc = Extract<Bmc, { type: 'redfish' }>;
export type Json = Record<string, unknown>;

export interface RedfishClientOptions {
  /** The most one driver call may take, all its requests and retries included. Default 30 s. */
  timeoutMs?: number;
  /** Further tries of a request after a fault another try can cure. Default 2. */
  retries?: number;
  /** Path of a PEM bundle that BMC certificates are verified against instead of the system's CAs. */
  ca?: string;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_RETRIES = 2;
const BACKOFF_MS = 200;
const LOGOUT_BUDGET_MS = 5_000;
const MAX_BODY_BYTES = 1 << 20;
export const SERVICE_ROOT = '/redfish/v1/';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: unknown;
}

/** One driver call: when it must be over, and the credentials its requests carry. */
export interface Call {
  deadline: number;
  auth: Record<string, string>;
}

interface RequestOptions {
  body?: unknown;
  headers?: Record<string, string>;
  /**
   * Whether a request the BMC may have received can be sent again. A reset is not: after a 5xx or
   * a lost reply the machine may have cycled already, so only a connection never made is retried.
   */
  idempotent: boolean;
}

type Outcome = { reply: Reply; error?: undefined } | { error: PowerError; delivered: boolean };

/** HTTP(S) to one BMC, with the deadline of the call, bounded retries and typed failures. */
export class RedfishClient {
  readonly origin: string;
  readonly timeoutMs: number;
  private agent?: Promise<http.Agent>;

  constructor(
    private readonly bmc: RedfishBmc,
    private readonly deps: RedfishClientOptions,
  ) {
    // `origin` drops any user:password@ an address might carry: it goes into every error message.
    this.origin = new URL(bmc.address).origin;
    this.timeoutMs = deps.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** A permanent fault of this BMC (or of its configuration), named after it. */
  fault(kind: PowerErrorKind, text: string, options?: ErrorOptions): PowerError {
    return new PowerError(`redfish ${this.origin}: ${text}`, kind, false, options);
  }

  /** Sends a request; a status of 400 or more is thrown as a PowerError. */
  async request(call: Call, method: string, path: string, options: RequestOptions): Promise<Reply> {
    const where = `redfish ${this.origin}: ${method} ${path}`;
    const retries = this.deps.retries ?? DEFAULT_RETRIES;
    for (let tries = 0; ; tries++) {
      const outcome = await this.attempt(call, method, path, options, where);
      if (!outcome.error && outcome.reply.status < 400) return outcome.reply;
      const error = outcome.error ?? statusError(where, outcome.reply.status, outcome.reply.body);
      const delivered = outcome.error ? outcome.delivered : true;
      const pause = BACKOFF_MS * 2 ** tries;
      const again = error.retryable && tries < retries && (options.idempotent || !delivered);
      if (!again || Date.now() + pause >= call.deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }

  private async attempt(call: Call, method: string, path: string, options: RequestOptions, where: string) {
    const url = new URL(path, this.origin);
    const agent = await this.getAgent(url);
    const remaining = call.deadline - Date.now();
    if (remaining <= 0) return { error: timeoutError(where, this.timeoutMs, 'connect'), delivered: false };
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
    const headers: Record<string, string> = { Accept: 'application/json', 'OData-Version': '4.0' };
    if (payload !== undefined) headers['Content-Type'] = 'application/json';
    Object.assign(headers, call.auth, options.headers);
    const secure = url.protocol === 'https:';
    return new Promise<Outcome>((resolve) => {
      let phase: RequestPhase = 'connect';
      let timedOut = false;
      const settle = (outcome: Outcome) => {
        clearTimeout(timer);
        resolve(outcome);
      };
      const fail = (err: unknown) =>
        settle({
          error: timedOut ? timeoutError(where, this.timeoutMs, phase) : networkError(where, err),
          delivered: phase === 'reply',
        });
      const req = (secure ? https : http).request(url, { method, agent, headers }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_BODY_BYTES) req.destroy(new Error(`reply larger than ${MAX_BODY_BYTES} bytes`));
          else chunks.push(chunk);
        });
        res.on('error', fail);
        res.on('end', () =>
          settle({ reply: { status: res.statusCode ?? 0, headers: res.headers, body: parseJson(chunks) } }),
        );
      });
      const timer = setTimeout(() => {
        timedOut = true;
        req.destroy();
      }, remaining);
      req.on('socket', (socket) => {
        socket.once('connect', () => (phase = secure ? 'tls' : 'reply'));
        socket.once('secureConnect', () => (phase = 'reply'));
      });
      req.on('error', fail);
      req.end(payload);
    });
  }

  private getAgent(url: URL): Promise<http.Agent> {
    this.agent ??= (async () => {
      if (url.protocol !== 'https:') return new http.Agent({ keepAlive: false });
      let ca: string | undefined;
      if (this.deps.ca)
        ca = await readFile(this.deps.ca, 'utf8').catch((err: NodeJS.ErrnoException) => {
          throw this.fault('bmc-error', `cannot read CA bundle ${this.deps.ca}: ${err.code}`);
        });
      return new https.Agent({ keepAlive: false, rejectUnauthorized: this.bmc.verify_tls, ca });
    })();
    return this.agent;
  }
}

function parseJson(chunks: Buffer[]): unknown {
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return text ? (JSON.parse(text) as unknown) : undefined;
  } catch {
    return text;
  }
}

export const isJson = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

export const odataId = (value: unknown): string | undefined =>
  isJson(value) && typeof value['@odata.id'] === 'string' ? value['@odata.id'] : undefined;

export const strings = (value: unknown): string[] | undefined =>
  Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : undefined;

const header = (reply: Reply, name: string): string | undefined => {
  const value = reply.headers[name];
  return Array.isArray(value) ? value[0] : value;
};

/** A path on the BMC itself: credentials are never sent to a host a reply points at. */
export function samePath(client: RedfishClient, location: string): string {
  const url = new URL(location, client.origin);
  if (url.origin !== client.origin) throw client.fault('bmc-error', `points at another host (${url.origin})`);
  return url.pathname + url.search;
}

/** GETs a resource, following one redirect (sushy redirects a system's name to its UUID). */
export async function getJson(client: RedfishClient, call: Call, path: string) {
  let reply = await client.request(call, 'GET', path, { idempotent: true });
  const location = header(reply, 'location');
  if (reply.status >= 300 && location) {
    path = samePath(client, location);
    reply = await client.request(call, 'GET', path, { idempotent: true });
  }
  if (!isJson(reply.body)) throw client.fault('bmc-error', `GET ${path}: not a JSON object`);
  const etag = header(reply, 'etag') ?? reply.body['@odata.etag'];
  return { path, body: reply.body, etag: typeof etag === 'string' ? etag : undefined };
}

export type System = Awaited<ReturnType<typeof getJson>>;

/**
 * Opens a Redfish session where the service has one; returns the session to delete afterwards.
 * A service that refuses the session (no SessionService, 4xx) is spoken to with basic auth; wrong
 * credentials then fail there as `auth`.
 */
export async function login(
  client: RedfishClient,
  call: Call,
  root: Json,
  username: string,
  password: string,
) {
  const links = isJson(root.Links) ? root.Links : {};
  const sessions =
    odataId(links.Sessions) ?? (root.SessionService ? `${SERVICE_ROOT}SessionService/Sessions` : undefined);
  const credentials = { UserName: username, Password: password };
  const reply = sessions
    ? await client
        .request({ ...call, auth: {} }, 'POST', sessions, { body: credentials, idempotent: false })
        .catch((err: unknown) => {
          if (err instanceof PowerError && !err.retryable) return undefined;
          throw err;
        })
    : undefined;
  const token = reply && header(reply, 'x-auth-token');
  if (!reply || !token) {
    call.auth = { Authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}` };
    return undefined;
  }
  call.auth = { 'X-Auth-Token': token };
  const location = header(reply, 'location') ?? odataId(reply.body);
  return location ? samePath(client, location) : undefined;
}

/** Deletes the session; a BMC has few session slots. Failures are ignored: the session expires. */
export async function logout(client: RedfishClient, call: Call, session: string): Promise<void> {
  const budget = { deadline: Date.now() + Math.min(LOGOUT_BUDGET_MS, client.timeoutMs), auth: call.auth };
  await client.request(budget, 'DELETE', session, { idempotent: true }).catch(() => undefined);
}
