import { readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { Bmc } from '../../schemas/host';
import type { SecretResolver } from '../jobs/secrets';
import type { BootDevice, PowerDriver, PowerState } from './power-driver';
import { PowerError, credentialError } from './errors';
import type { PowerErrorKind } from './errors';
import { networkError, statusError, timeoutError } from './redfish-errors';
import type { RequestPhase } from './redfish-errors';

type RedfishBmc = Extract<Bmc, { type: 'redfish' }>;
type Json = Record<string, unknown>;

export interface RedfishPowerDeps {
  resolveSecret: SecretResolver;
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
const SERVICE_ROOT = '/redfish/v1/';

/**
 * ResetType per operation, best first, among those the system advertises; `assume` is sent to a
 * system that advertises none (AllowableValues is optional in the schema).
 */
const RESETS = {
  on: { prefer: ['On', 'ForceOn'], assume: 'On' },
  off: { prefer: ['ForceOff'], assume: 'ForceOff' },
  soft: { prefer: ['GracefulShutdown'], assume: 'GracefulShutdown' },
  cycle: { prefer: ['PowerCycle', 'ForceRestart', 'GracefulRestart'], assume: 'ForceRestart' },
} as const;
type ResetOp = keyof typeof RESETS;

const BOOT_TARGETS: Record<BootDevice, string> = { pxe: 'Pxe', disk: 'Hdd' };

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: unknown;
}

/** One driver call: when it must be over, and the credentials its requests carry. */
interface Call {
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
class RedfishClient {
  readonly origin: string;
  readonly timeoutMs: number;
  private agent?: Promise<http.Agent>;

  constructor(
    private readonly bmc: RedfishBmc,
    private readonly deps: RedfishPowerDeps,
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

const isJson = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const odataId = (value: unknown): string | undefined =>
  isJson(value) && typeof value['@odata.id'] === 'string' ? value['@odata.id'] : undefined;

const strings = (value: unknown): string[] | undefined =>
  Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : undefined;

const header = (reply: Reply, name: string): string | undefined => {
  const value = reply.headers[name];
  return Array.isArray(value) ? value[0] : value;
};

/** A path on the BMC itself: credentials are never sent to a host a reply points at. */
function samePath(client: RedfishClient, location: string): string {
  const url = new URL(location, client.origin);
  if (url.origin !== client.origin) throw client.fault('bmc-error', `points at another host (${url.origin})`);
  return url.pathname + url.search;
}

/** GETs a resource, following one redirect (sushy redirects a system's name to its UUID). */
async function getJson(client: RedfishClient, call: Call, path: string) {
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

/**
 * Opens a Redfish session where the service has one; returns the session to delete afterwards.
 * A service that refuses the session (no SessionService, 4xx) is spoken to with basic auth; wrong
 * credentials then fail there as `auth`.
 */
async function login(client: RedfishClient, call: Call, root: Json, username: string, password: string) {
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
async function logout(client: RedfishClient, call: Call, session: string): Promise<void> {
  const budget = { deadline: Date.now() + Math.min(LOGOUT_BUDGET_MS, client.timeoutMs), auth: call.auth };
  await client.request(budget, 'DELETE', session, { idempotent: true }).catch(() => undefined);
}

async function findSystem(client: RedfishClient, call: Call, root: Json, systemId?: string): Promise<string> {
  const collection = odataId(root.Systems) ?? `${SERVICE_ROOT}Systems`;
  if (systemId) {
    const system = await getJson(
      client,
      call,
      `${collection.replace(/\/$/, '')}/${encodeURIComponent(systemId)}`,
    );
    return odataId(system.body) ?? system.path;
  }
  const { body } = await getJson(client, call, collection);
  const members = (Array.isArray(body.Members) ? body.Members : [])
    .map(odataId)
    .filter((m) => m !== undefined);
  if (members.length === 1 && members[0]) return members[0];
  const listed = `${members.length} systems (${members.join(', ')})`;
  throw client.fault('bmc-error', `${collection} has ${listed}; set system_id`);
}

/** The reset types the system advertises, in the action or its ActionInfo; undefined if neither. */
async function allowedResets(client: RedfishClient, call: Call, action: Json): Promise<string[] | undefined> {
  const listed = strings(action['ResetType@Redfish.AllowableValues']);
  const info = action['@Redfish.ActionInfo'];
  if (listed || typeof info !== 'string') return listed;
  const { body } = await getJson(client, call, samePath(client, info));
  const params: unknown[] = Array.isArray(body.Parameters) ? body.Parameters : [];
  const param = params.find((p) => isJson(p) && p.Name === 'ResetType');
  return isJson(param) ? strings(param.AllowableValues) : undefined;
}

async function reset(client: RedfishClient, call: Call, system: Json, op: ResetOp): Promise<void> {
  const action = isJson(system.Actions) ? system.Actions['#ComputerSystem.Reset'] : undefined;
  if (!isJson(action) || typeof action.target !== 'string')
    throw client.fault('unsupported', 'the system has no ComputerSystem.Reset action');
  const allowed = await allowedResets(client, call, action);
  const { prefer, assume } = RESETS[op];
  const type = allowed ? prefer.find((t) => allowed.includes(t)) : assume;
  if (!type)
    throw client.fault(
      'unsupported',
      `no ${prefer.join(' or ')} among its reset types (${allowed?.join(', ')})`,
    );
  const body = { ResetType: type };
  await client.request(call, 'POST', samePath(client, action.target), { body, idempotent: false });
}

async function setBoot(client: RedfishClient, call: Call, system: System, device: BootDevice) {
  const target = BOOT_TARGETS[device];
  const boot = isJson(system.body.Boot) ? system.body.Boot : {};
  const allowed = strings(boot['BootSourceOverrideTarget@Redfish.AllowableValues']);
  if (allowed && !allowed.includes(target))
    throw client.fault('unsupported', `${system.path} offers no boot from ${target} (${allowed.join(', ')})`);
  await client.request(call, 'PATCH', system.path, {
    body: { Boot: { BootSourceOverrideTarget: target, BootSourceOverrideEnabled: 'Once' } },
    // Some BMCs answer 428 Precondition Required to a PATCH without the resource's ETag.
    headers: system.etag ? { 'If-Match': system.etag } : {},
    idempotent: true,
  });
}

function powerStateOf(system: Json): PowerState {
  if (system.PowerState === 'On' || system.PowerState === 'Paused') return 'on';
  if (system.PowerState === 'Off') return 'off';
  return 'unknown';
}

type System = Awaited<ReturnType<typeof getJson>>;

/**
 * A Redfish BMC: finds the system (the only member of /redfish/v1/Systems, or `system_id`), reads
 * PowerState, resets with a ResetType the system advertises and sets a one-time boot override.
 * Each call opens and closes its own session (or uses basic auth) and is bounded by `timeoutMs`.
 * On, off and soft off leave a machine already in (or going to) that state alone; cycle powers an
 * off machine on, as the standard leaves a reset of an off machine undefined.
 */
export function createRedfishPower(bmc: RedfishBmc, deps: RedfishPowerDeps): PowerDriver {
  const client = new RedfishClient(bmc, deps);
  let root: Json | undefined;
  let systemPath: string | undefined;

  const run = async <T>(op: (call: Call, system: System) => T | Promise<T>): Promise<T> => {
    const call: Call = { deadline: Date.now() + client.timeoutMs, auth: {} };
    const password = await deps.resolveSecret(bmc.password).catch((err: unknown) => {
      throw credentialError(`redfish ${client.origin}`, 'password', err);
    });
    root ??= (await getJson(client, call, SERVICE_ROOT)).body;
    const session = await login(client, call, root, bmc.username, password);
    try {
      systemPath ??= await findSystem(client, call, root, bmc.system_id);
      return await op(call, await getJson(client, call, systemPath));
    } finally {
      if (session) await logout(client, call, session);
    }
  };
  const resetUnless = (op: ResetOp, ...states: string[]) =>
    run(async (call, { body }) => {
      if (!states.includes(String(body.PowerState))) await reset(client, call, body, op);
    });

  return {
    powerState: () => run((_call, system) => powerStateOf(system.body)),
    powerOn: () => resetUnless('on', 'On', 'PoweringOn'),
    powerOff: () => resetUnless('off', 'Off'),
    softOff: () => resetUnless('soft', 'Off', 'PoweringOff'),
    powerCycle: () =>
      run((call, { body }) => reset(client, call, body, body.PowerState === 'Off' ? 'on' : 'cycle')),
    setNextBoot: (device) => run((call, system) => setBoot(client, call, system, device)),
  };
}
