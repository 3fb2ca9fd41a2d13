// IPMI over LAN through Debian's ipmitool: the de facto client, maintained in Debian and known to
// work with the BMCs in the field and with OpenIPMI's ipmi_sim. No maintained IPMI v2 / RMCP+
// implementation exists on npm (a search of the registry's package list finds none naming IPMI), and
// an RMCP+ stack of our own (RAKP, HMAC, AES-CBC) would be a protocol to maintain for no gain.
import type { Bmc } from '../../schemas/host';
import { DEFAULT_PATH } from '../jobs/command-job';
import { describeExit, runProcess, type ProcessOutcome } from '../jobs/process';
import type { SecretResolver } from '../jobs/secrets';
import {
  credentialError,
  outputTail,
  PowerAuthError,
  PowerBmcError,
  PowerTimeoutError,
  PowerUnreachableError,
  PowerUnsupportedError,
  type PowerError,
} from './errors';
import type { BootDevice, PowerDriver, PowerState } from './power-driver';

export type IpmiBmc = Extract<Bmc, { type: 'ipmi' }>;

export interface IpmiPowerDeps {
  resolveSecret: SecretResolver;
  /** The most one driver call may take, retries included. */
  timeoutMs?: number;
  /** Further tries after a retryable failure, made only where a repeat cannot act twice. */
  retries?: number;
  /** The ipmitool program, looked up in the standard system PATH. */
  ipmitool?: string;
}

export const IPMI_DEFAULT_TIMEOUT_MS = 20_000;
export const IPMI_DEFAULT_RETRIES = 1;
const RETRY_DELAY_MS = 500;

/** ipmitool says this when no session was opened, so the command itself was never sent. */
const NO_SESSION = /Unable to establish IPMI v2 \/ RMCP\+ session/;

/** `-v` lines that say nothing about a failure (ipmitool prints them on success too). */
const NOISE =
  /^(Loading IANA PEN Registry|Running Get VSO Capabilities|Discovered IPMB address|Invalid completion code received: Invalid command)/;

export function createIpmiPower(bmc: IpmiBmc, deps: IpmiPowerDeps): PowerDriver {
  const where = `ipmi ${bmc.username}@${bmc.address}:${bmc.port}`;
  const run = async (command: string[], repeatable: boolean): Promise<string> =>
    runIpmitool(bmc, deps, where, command, repeatable);
  return {
    async powerState(): Promise<PowerState> {
      const output = await run(['chassis', 'power', 'status'], true);
      const match = /Chassis Power is (on|off)/.exec(output);
      if (!match?.[1])
        throw new PowerBmcError(
          `${where}: chassis power status: unexpected answer: ${outputTail(output)}`,
          false,
        );
      return match[1] as PowerState;
    },
    powerOn: async () => void (await run(['chassis', 'power', 'on'], true)),
    powerOff: async () => void (await run(['chassis', 'power', 'off'], true)),
    // A second cycle or power-button press is a second action: retried only if no session was opened.
    powerCycle: async () => void (await run(['chassis', 'power', 'cycle'], false)),
    softOff: async () => void (await run(['chassis', 'power', 'soft'], false)),
    // ipmitool's defaults: a one-time override (not persistent), legacy/UEFI left to the firmware.
    setNextBoot: async (device: BootDevice) => void (await run(['chassis', 'bootdev', device], true)),
  };
}

/** ipmitool's arguments: each request waits `-N` s and is sent twice at most (`-R 1`). */
export function ipmitoolArgs(bmc: IpmiBmc, attemptMs: number, command: string[]): string[] {
  // With -R 1 ipmitool gives up on a silent BMC after about 2 x N s: keep that within half the
  // attempt, so its own message (not our kill) says what happened.
  const seconds = Math.max(1, Math.min(5, Math.floor(attemptMs / 4000)));
  return [
    // -v makes ipmitool say why a session failed (a wrong password vs a wrong user vs no answer).
    '-v',
    '-I',
    'lanplus',
    '-C',
    String(bmc.cipher_suite),
    '-H',
    bmc.address,
    '-p',
    String(bmc.port),
    '-U',
    bmc.username,
    // The password is read from IPMI_PASSWORD: a command line is visible to every user in ps.
    '-E',
    '-N',
    String(seconds),
    '-R',
    '1',
    ...command,
  ];
}

async function runIpmitool(
  bmc: IpmiBmc,
  deps: IpmiPowerDeps,
  where: string,
  command: string[],
  repeatable: boolean,
): Promise<string> {
  let password: string;
  try {
    password = await deps.resolveSecret(bmc.password);
  } catch (err) {
    throw credentialError(where, 'password', err);
  }
  const what = `${where}: ${command.join(' ')}`;
  const timeoutMs = deps.timeoutMs ?? IPMI_DEFAULT_TIMEOUT_MS;
  const tries = 1 + Math.max(0, deps.retries ?? IPMI_DEFAULT_RETRIES);
  const attemptMs = Math.floor(timeoutMs / tries);
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 1; ; attempt++) {
    const limit = Math.max(1, Math.min(attemptMs, deadline - Date.now()));
    const outcome = await runProcess(deps.ipmitool ?? 'ipmitool', ipmitoolArgs(bmc, limit, command), {
      env: { PATH: DEFAULT_PATH, IPMI_PASSWORD: password },
      signal: AbortSignal.timeout(limit),
    });
    // ipmitool does not print the password; a BMC's or a future version's message might.
    const output = password === '' ? outcome.output : outcome.output.split(password).join('***');
    if (outcome.code === 0 && !outcome.spawnError) return output;
    const error = ipmiError(what, outcome, output, limit);
    const again = error.retryable && (repeatable || NO_SESSION.test(output));
    if (!again || attempt >= tries || deadline - Date.now() < RETRY_DELAY_MS + 1000) throw error;
    await new Promise((resolve) => setTimeout(resolve, RETRY_DELAY_MS));
  }
}

/** What ipmitool's messages mean, from what `-v` prints on each failure. */
export function ipmiError(
  what: string,
  outcome: ProcessOutcome,
  output: string,
  limitMs: number,
): PowerError {
  if (outcome.spawnError?.code === 'ENOENT')
    return new PowerUnsupportedError(
      `${what}: ipmitool is not installed on this agent (apt-get install ipmitool)`,
    );
  if (outcome.spawnError) return new PowerUnsupportedError(describeExit(what, outcome));
  if (outcome.aborted) return new PowerTimeoutError(`${what}: no answer within ${limitMs} ms`);
  const detail = outputTail(
    output
      .split('\n')
      .filter((line) => !NOISE.test(line))
      .join('\n'),
  );
  if (/RAKP 2 HMAC is invalid/i.test(output))
    return new PowerAuthError(`${what}: the BMC refused the password (RAKP 2 HMAC is invalid)`);
  if (/unauthorized name/i.test(output))
    return new PowerAuthError(`${what}: the BMC does not know this user (unauthorized name)`);
  if (/insufficient privilege|unauthorized role|requested privilege level/i.test(output))
    return new PowerAuthError(`${what}: the user lacks the privilege for this: ${detail}`);
  if (/invalid (authentication|integrity|confidentiality) algorithm|cipher suite/i.test(output))
    return new PowerUnsupportedError(`${what}: the BMC refused the cipher suite: ${detail}`);
  if (/Address lookup for .* failed/i.test(output))
    return new PowerUnreachableError(`${what}: the BMC address does not resolve: ${detail}`);
  if (NO_SESSION.test(output)) return new PowerUnreachableError(`${what}: no answer from the BMC: ${detail}`);
  if (/Invalid command|not supported|Invalid data field/i.test(output))
    return new PowerUnsupportedError(`${what}: the BMC does not support this: ${detail}`);
  return new PowerBmcError(`${describeExit(what, outcome)}: ${detail}`);
}
