import { PowerBmcError } from './errors';
import type { PowerDriver, PowerState } from './power-driver';

export interface PowerOffResult {
  before: PowerState;
  /** How the machine went off: it already was, through the OS (soft), or forced (hard). */
  how: 'already-off' | 'soft' | 'hard';
}

export interface PowerOffOptions {
  /** How long the OS gets to shut down after the soft request. */
  softTimeoutMs: number;
  /** Whether the machine may be forced off when the OS does not shut down in time. */
  allowHard: boolean;
  pollMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Soft off first (ACPI / OS shutdown), polling the power state; forced off after `softTimeoutMs`
 * where the policy allows, else an error that says the machine is still on.
 */
export async function powerOffGracefully(
  driver: PowerDriver,
  options: PowerOffOptions,
): Promise<PowerOffResult> {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const before = await driver.powerState();
  if (before === 'off') return { before, how: 'already-off' };
  await driver.softOff();
  const deadline = Date.now() + options.softTimeoutMs;
  while (Date.now() < deadline) {
    await sleep(Math.min(options.pollMs ?? 2_000, Math.max(0, deadline - Date.now())));
    if ((await driver.powerState()) === 'off') return { before, how: 'soft' };
  }
  if (!options.allowHard) {
    // Permanent for this request: retrying would only wait out the same soft timeout again.
    throw new PowerBmcError(
      `still on ${Math.round(options.softTimeoutMs / 1000)} s after a soft off, and policy forbids a hard off`,
      false,
    );
  }
  await driver.powerOff();
  return { before, how: 'hard' };
}
