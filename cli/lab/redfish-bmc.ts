// A Redfish BMC for one lab machine: the chassis of its IPMI siblings (cli/lab/chassis-control on
// the machine's QEMU, through QMP) spoken to over Redfish, so the lab is a mixed IPMI + Redfish site
// and the product's Redfish driver (sessions, PowerState, ComputerSystem.Reset, a one-time boot
// override) runs end to end against a machine it really powers (issue 14).
//
//   tsx cli/lab/redfish-bmc.ts <address> <port> <vm-dir> <system-id> <username>
//
// The password is $VAQUERO_LAB_BMC_PASSWORD. Runs in the lab namespace, on the BMC's address.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import { CHASSIS_CONTROL } from './machines';

const run = promisify(execFile);

const [address, portText, vmDir, systemId, username] = process.argv.slice(2);
const password = process.env.VAQUERO_LAB_BMC_PASSWORD ?? '';
if (!address || !portText || !vmDir || !systemId || !username || !password) {
  process.stderr.write(
    'usage: redfish-bmc.ts <address> <port> <vm-dir> <system-id> <username> (password in $VAQUERO_LAB_BMC_PASSWORD)\n',
  );
  process.exit(2);
}

const ROOT = '/redfish/v1';
const SYSTEM = `${ROOT}/Systems/${systemId}`;
const SESSIONS = `${ROOT}/SessionService/Sessions`;
/** A BMC has few session slots: the oldest goes when a new one would pass this. */
const MAX_SESSIONS = 16;
const MAX_BODY = 64 * 1024;
const RESET_TYPES = ['On', 'ForceOff', 'GracefulShutdown', 'ForceRestart', 'PowerCycle'] as const;
const BOOT_TARGETS: Record<string, string> = { None: 'default', Pxe: 'pxe', Hdd: 'disk' };

const sessions = new Map<string, string>(); // id -> token
let override: { target: string; enabled: 'Disabled' | 'Once' | 'Continuous' } = {
  target: 'None',
  enabled: 'Disabled',
};

async function chassis(...args: string[]): Promise<string> {
  const { stdout } = await run(CHASSIS_CONTROL, [vmDir as string, ...args], {
    timeout: 10_000,
    encoding: 'utf8',
  });
  return stdout;
}

class RedfishError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Redfish's error body (DSP0266 "Error responses"). */
function errorBody(message: string): object {
  return { error: { code: 'Base.1.8.GeneralError', message, '@Message.ExtendedInfo': [] } };
}

function authorized(req: http.IncomingMessage): boolean {
  const token = req.headers['x-auth-token'];
  if (typeof token === 'string' && [...sessions.values()].includes(token)) return true;
  const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '')?.[1];
  return basic !== undefined && Buffer.from(basic, 'base64').toString() === `${username}:${password}`;
}

/** Whether the machine's QEMU runs, read as chassis-control reads it (no process started per GET). */
async function poweredOn(): Promise<boolean> {
  try {
    const pid = Number((await readFile(path.join(vmDir as string, 'qemu.pid'), 'utf8')).trim());
    if (!pid) return false;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    return cmdline.includes(path.join(vmDir as string, 'qmp.sock')) && !/\nState:\tZ/.test(status);
  } catch {
    return false;
  }
}

async function system(): Promise<object> {
  const on = await poweredOn();
  return {
    '@odata.id': SYSTEM,
    '@odata.type': '#ComputerSystem.v1_13_0.ComputerSystem',
    Id: systemId,
    Name: systemId,
    PowerState: on ? 'On' : 'Off',
    Boot: {
      BootSourceOverrideTarget: override.target,
      BootSourceOverrideEnabled: override.enabled,
      'BootSourceOverrideTarget@Redfish.AllowableValues': Object.keys(BOOT_TARGETS),
    },
    Actions: {
      '#ComputerSystem.Reset': {
        target: `${SYSTEM}/Actions/ComputerSystem.Reset`,
        'ResetType@Redfish.AllowableValues': RESET_TYPES,
      },
    },
  };
}

/** A reset, as the IPMI BMC turns `power on|off|soft|reset|cycle` into chassis commands. */
async function reset(type: unknown): Promise<void> {
  if (type === 'On') await chassis('set', 'power', '1');
  else if (type === 'ForceOff') await chassis('set', 'power', '0');
  else if (type === 'GracefulShutdown') await chassis('set', 'shutdown', '1');
  else if (type === 'ForceRestart') await chassis('set', 'reset', '1');
  else if (type === 'PowerCycle') await chassis('set', 'power', '0', 'power', '1');
  else throw new RedfishError(400, `ResetType must be one of ${RESET_TYPES.join(', ')}`);
  // A one-time override is spent by the boot it was set for.
  if (type !== 'ForceOff' && type !== 'GracefulShutdown' && override.enabled === 'Once') {
    override = { target: 'None', enabled: 'Disabled' };
    await chassis('set', 'boot', 'default');
  }
}

async function patchBoot(body: Record<string, unknown>): Promise<void> {
  const boot = body.Boot as Record<string, unknown> | undefined;
  if (typeof boot !== 'object' || boot === null) throw new RedfishError(400, 'only Boot can be changed');
  const target = boot.BootSourceOverrideTarget ?? override.target;
  const enabled = boot.BootSourceOverrideEnabled ?? (target === 'None' ? 'Disabled' : 'Once');
  if (typeof target !== 'string' || !Object.hasOwn(BOOT_TARGETS, target))
    throw new RedfishError(
      400,
      `BootSourceOverrideTarget must be one of ${Object.keys(BOOT_TARGETS).join(', ')}`,
    );
  if (enabled !== 'Disabled' && enabled !== 'Once' && enabled !== 'Continuous')
    throw new RedfishError(400, 'BootSourceOverrideEnabled must be Disabled, Once or Continuous');
  override = { target, enabled };
  await chassis('set', 'boot', enabled === 'Disabled' ? 'default' : (BOOT_TARGETS[target] ?? 'default'));
}

function newSession(body: Record<string, unknown>): { id: string; token: string } {
  if (body.UserName !== username || body.Password !== password)
    throw new RedfishError(401, 'wrong credentials');
  const id = randomBytes(8).toString('hex');
  const token = randomBytes(24).toString('hex');
  sessions.set(id, token);
  for (const old of sessions.keys()) if (sessions.size > MAX_SESSIONS) sessions.delete(old);
  return { id, token };
}

async function readJson(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new RedfishError(413, `a body over ${MAX_BODY} bytes`);
    chunks.push(chunk);
  }
  try {
    const value: unknown = JSON.parse(Buffer.concat(chunks).toString() || '{}');
    if (typeof value === 'object' && value !== null && !Array.isArray(value))
      return value as Record<string, unknown>;
  } catch {
    // Answered below.
  }
  throw new RedfishError(400, 'the body is not a JSON object');
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = (req.url ?? '/').split('?')[0]?.replace(/\/+$/, '') || '/';
  const send = (status: number, body?: object, headers: Record<string, string> = {}) => {
    res.writeHead(status, { ...(body ? { 'content-type': 'application/json' } : {}), ...headers });
    res.end(body ? JSON.stringify(body) : undefined);
  };
  if (req.method === 'GET' && url === ROOT)
    return send(200, {
      '@odata.id': `${ROOT}/`,
      '@odata.type': '#ServiceRoot.v1_5_0.ServiceRoot',
      Id: 'RootService',
      RedfishVersion: '1.6.0',
      Systems: { '@odata.id': `${ROOT}/Systems` },
      SessionService: { '@odata.id': `${ROOT}/SessionService` },
      Links: { Sessions: { '@odata.id': SESSIONS } },
    });
  if (req.method === 'POST' && url === SESSIONS) {
    const { id, token } = newSession(await readJson(req));
    return send(
      201,
      { '@odata.id': `${SESSIONS}/${id}`, Id: id, UserName: username },
      {
        'x-auth-token': token,
        location: `${SESSIONS}/${id}`,
      },
    );
  }
  if (!authorized(req)) return send(401, errorBody('authentication required'));
  if (req.method === 'DELETE' && url.startsWith(`${SESSIONS}/`)) {
    const id = url.slice(SESSIONS.length + 1);
    return sessions.delete(id) ? send(204) : send(404, errorBody(`no session ${id}`));
  }
  if (req.method === 'GET' && url === `${ROOT}/Systems`)
    return send(200, {
      '@odata.id': `${ROOT}/Systems`,
      'Members@odata.count': 1,
      Members: [{ '@odata.id': SYSTEM }],
    });
  if (req.method === 'GET' && url === SYSTEM) return send(200, await system());
  if (req.method === 'PATCH' && url === SYSTEM) {
    await patchBoot(await readJson(req));
    return send(204);
  }
  if (req.method === 'POST' && url === `${SYSTEM}/Actions/ComputerSystem.Reset`) {
    await reset((await readJson(req)).ResetType);
    return send(204);
  }
  return send(404, errorBody(`no ${req.method ?? 'request'} ${url}`));
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((err: unknown) => {
    const status = err instanceof RedfishError ? err.status : 500;
    if (status === 500) process.stderr.write(`redfish-bmc: ${(err as Error).message}\n`);
    if (!res.headersSent) res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(errorBody((err as Error).message)));
  });
});
server.requestTimeout = 30_000;
server.listen(Number(portText), address, () => {
  process.stdout.write(`redfish-bmc: ${systemId} on http://${address}:${portText}${ROOT}\n`);
});
