import type { SecretResolver } from '../jobs/secrets';
import type { BootDevice, PowerDriver, PowerState } from './power-driver';
import { credentialError } from './errors';
import {
  RedfishClient,
  SERVICE_ROOT,
  getJson,
  isJson,
  login,
  logout,
  odataId,
  samePath,
  strings,
  type Call,
  type Json,
  type RedfishBmc,
  type RedfishClientOptions,
  type System,
} from './redfish-client';

export interface RedfishPowerDeps extends RedfishClientOptions {
  resolveSecret: SecretResolver;
}

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
