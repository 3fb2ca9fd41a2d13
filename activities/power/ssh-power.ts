import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Bmc } from '../../schemas/host';
import { DEFAULT_PATH } from '../jobs/command-job';
import { describeExit, runProcess, type ProcessOutcome } from '../jobs/process';
import type { SecretResolver } from '../jobs/secrets';
import { sshArgs } from '../jobs/ssh-job';
import type { SshJob } from '../jobs/types';
import {
  credentialError,
  outputTail,
  PowerAuthError,
  PowerBmcError,
  PowerError,
  PowerTimeoutError,
  PowerUnreachableError,
  PowerUnsupportedError,
} from './errors';
import type { PowerDriver, PowerState } from './power-driver';

export type SshBmc = Extract<Bmc, { type: 'ssh' }>;

/** What runs on the host. Tests replace the reboot: their sshd runs commands on the test machine. */
export interface SshPowerCommands {
  probe: string;
  reboot: string;
  poweroff: string;
}

export const SSH_POWER_COMMANDS: SshPowerCommands = {
  probe: 'true',
  reboot: 'systemctl reboot',
  poweroff: 'systemctl poweroff',
};

export interface SshPowerDeps {
  resolveSecret: SecretResolver;
  /** The most one call may take, connecting included. */
  timeoutMs?: number;
  /** known_hosts (new keys accepted, changed keys refused); without it each call trusts what it is shown. */
  knownHostsFile?: string;
  commands?: Partial<SshPowerCommands>;
}

export const SSH_POWER_DEFAULT_TIMEOUT_MS = 30_000;

// ssh exits with 255 for its own errors (unreachable, host key, authentication), else with the
// remote command's status.
const SSH_ERROR_STATUS = 255;

/**
 * The soft path through the host's OS: reboot and power off over SSH. A machine that is off has no
 * sshd, so it cannot be powered on, nor its next boot device chosen, this way.
 */
export function createSshPower(bmc: SshBmc, deps: SshPowerDeps): PowerDriver {
  const commands = { ...SSH_POWER_COMMANDS, ...deps.commands };
  const where = `ssh ${bmc.username}@${bmc.address}:${bmc.port}`;
  const run = (command: string, goesDown: boolean) => runSsh(bmc, deps, where, command, goesDown);
  const unsupported = (what: string) =>
    Promise.reject(
      new PowerUnsupportedError(`${where}: ${what} needs a BMC (ipmi, redfish or command), not ssh`),
    );
  return {
    async powerState(): Promise<PowerState> {
      try {
        await run(commands.probe, false);
        return 'on';
      } catch (err) {
        // No answer does not mean off: a hung or booting machine does not answer either. A refused
        // key or a missing ssh client is ours to fix, and says so.
        if (err instanceof PowerError && err.kind !== 'auth' && err.kind !== 'unsupported') return 'unknown';
        throw err;
      }
    },
    powerOn: () => unsupported('powering on'),
    powerOff: () => run(commands.poweroff, true),
    powerCycle: () => run(commands.reboot, true),
    softOff: () => run(commands.poweroff, true),
    setNextBoot: (device) => unsupported(`choosing the next boot device (${device})`),
  };
}

async function runSsh(
  bmc: SshBmc,
  deps: SshPowerDeps,
  where: string,
  command: string,
  goesDown: boolean,
): Promise<void> {
  let key: string;
  try {
    key = await deps.resolveSecret(bmc.private_key);
  } catch (err) {
    throw credentialError(where, 'private_key', err);
  }
  const timeoutMs = deps.timeoutMs ?? SSH_POWER_DEFAULT_TIMEOUT_MS;
  // The key never touches a command line: a 0700 directory of our own with a 0600 file in it.
  const dir = await mkdtemp(path.join(tmpdir(), 'vaquero-ssh-'));
  try {
    const keyFile = path.join(dir, 'id');
    await writeFile(keyFile, key.endsWith('\n') ? key : `${key}\n`, { mode: 0o600 });
    // The job runner's ssh options, for a job of this one command.
    const job: SshJob = {
      type: 'ssh',
      name: 'power',
      command,
      username: bmc.username,
      port: bmc.port,
      private_key: bmc.private_key,
      timeout: `${Math.max(1, Math.ceil(timeoutMs / 1000))}s`,
      retries: 0,
      retry_delay: '0s',
    };
    const knownHosts = deps.knownHostsFile ?? path.join(dir, 'known_hosts');
    const outcome = await runProcess('ssh', sshArgs(job, bmc.address, keyFile, knownHosts), {
      env: { PATH: DEFAULT_PATH },
      signal: AbortSignal.timeout(timeoutMs),
    });
    const error = sshError(`${where}: ${command}`, outcome, goesDown, timeoutMs);
    if (error) throw error;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * What went wrong, or nothing: a reboot may take the connection down before the command returns, and
 * ssh then says the remote host closed it, which it only says once a session was open.
 */
export function sshError(
  what: string,
  outcome: ProcessOutcome,
  goesDown: boolean,
  timeoutMs: number,
): PowerError | undefined {
  if (outcome.code === 0 && !outcome.spawnError) return undefined;
  const { output } = outcome;
  const detail = outputTail(output);
  if (outcome.spawnError?.code === 'ENOENT')
    return new PowerUnsupportedError(
      `${what}: the ssh client is not installed on this agent (apt-get install openssh-client)`,
    );
  if (outcome.spawnError) return new PowerUnsupportedError(describeExit(what, outcome));
  if (outcome.aborted) return new PowerTimeoutError(`${what}: no answer within ${timeoutMs} ms`);
  if (outcome.code !== SSH_ERROR_STATUS)
    return new PowerBmcError(`${describeExit(what, outcome)}${detail ? `: ${detail}` : ''}`, false);
  if (goesDown && /closed by remote host|client_loop: send disconnect/i.test(output)) return undefined;
  if (/Permission denied|Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED/i.test(output))
    return new PowerAuthError(`${what}: the host refused the login: ${detail}`);
  return new PowerUnreachableError(`${what}: cannot connect: ${detail}`);
}
