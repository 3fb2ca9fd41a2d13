import { durationMs } from '../../schemas/common';
import type { Bmc } from '../../schemas/host';
import { DEFAULT_PATH } from '../jobs/command-job';
import { describeExit, runProcess } from '../jobs/process';
import {
  outputTail,
  PowerBmcError,
  PowerTimeoutError,
  PowerUnsupportedError,
  type PowerError,
} from './errors';
import type { BootDevice, PowerDriver, PowerState, PowerTarget } from './power-driver';

export type CommandBmc = Extract<Bmc, { type: 'command' }>;

export type PowerAction = 'status' | 'on' | 'off' | 'cycle' | 'soft' | 'bootdev-pxe' | 'bootdev-disk';

/** The exit status by which a script says it cannot do an action at all (a PDU has no boot device). */
export const UNSUPPORTED_STATUS = 3;

/**
 * An operator's script as a BMC, called as `<command> <args...> <action>` without a shell. It sees
 * VAQUERO_HOST, VAQUERO_SITE and VAQUERO_MAC and a standard PATH, not the agent's environment (which
 * holds the secrets of other hosts). Exit 0 is success; for `status`, the last line it prints is `on`,
 * `off` or `unknown`. Exit 3 means the action is not supported; any other status is a retryable fault.
 */
export function createCommandPower(target: PowerTarget, bmc: CommandBmc): PowerDriver {
  const run = (action: PowerAction) => runScript(target, bmc, action);
  return {
    async powerState(): Promise<PowerState> {
      const output = await run('status');
      const last = output.trim().split('\n').pop()?.trim().toLowerCase();
      if (last === 'on' || last === 'off' || last === 'unknown') return last;
      throw new PowerBmcError(
        `${bmc.command} status: printed ${JSON.stringify(outputTail(output, 120))}, not on, off or unknown`,
        false,
      );
    },
    powerOn: async () => void (await run('on')),
    powerOff: async () => void (await run('off')),
    powerCycle: async () => void (await run('cycle')),
    softOff: async () => void (await run('soft')),
    setNextBoot: async (device: BootDevice) => void (await run(`bootdev-${device}`)),
  };
}

async function runScript(target: PowerTarget, bmc: CommandBmc, action: PowerAction): Promise<string> {
  const timeoutMs = durationMs(bmc.timeout);
  const outcome = await runProcess(bmc.command, [...bmc.args, action], {
    env: {
      PATH: DEFAULT_PATH,
      VAQUERO_HOST: target.host,
      VAQUERO_SITE: target.site,
      VAQUERO_MAC: target.mac,
    },
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (outcome.code === 0 && !outcome.spawnError) return outcome.output;
  const what = `${bmc.command} ${action}`;
  const detail = outputTail(outcome.output);
  const withDetail = (message: string) => (detail ? `${message}: ${detail}` : message);
  let error: PowerError;
  if (outcome.spawnError) error = new PowerUnsupportedError(describeExit(what, outcome));
  else if (outcome.aborted)
    error = new PowerTimeoutError(withDetail(`${what}: timed out after ${bmc.timeout}`));
  else if (outcome.code === UNSUPPORTED_STATUS)
    error = new PowerUnsupportedError(withDetail(`${what}: not supported by the script (exit status 3)`));
  else error = new PowerBmcError(withDetail(describeExit(what, outcome)));
  throw error;
}
