import { appendFile, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { durationMs } from '../../schemas/common';
import type { Bmc } from '../../schemas/host';
import type { BootEventKind } from '../../schemas/rollout';
import type { BootEventSink } from '../boot-events';
import type { PowerDriver, PowerState, PowerTarget } from './power-driver';

type SimBmc = Extract<Bmc, { type: 'sim' }>;

/** When each boot event comes, as a fraction of the host's boot_delay after a power cycle. */
const BOOT_SEQUENCE: [BootEventKind, number][] = [
  ['dhcp', 0.1],
  ['ipxe', 0.2],
  ['kernel', 0.4],
  ['checkpoint', 1],
];

export interface SimLabOptions {
  events: BootEventSink;
  /** Every power cycle is appended here (`site/host`), so tests count cycles across agent restarts. */
  cycleLog?: string;
  /** Multiplies every boot_delay: 0.01 turns a 30 s boot into 0.3 s for tests. */
  timeScale?: number;
}

/**
 * A simulated datacenter: machines that power-cycle, then "boot" by emitting the boot events a real
 * machine would cause, after the delays and with the failures their `sim` BMC declares.
 */
export class SimLab {
  private readonly power = new Map<string, PowerState>();
  /** Failures injected at run time (`site/host` -> stage), over what the SoT's sim BMC declares. */
  readonly faults = new Map<string, NonNullable<SimBmc['fail_stage']>>();
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly options: SimLabOptions) {}

  driver(target: PowerTarget, bmc: SimBmc): PowerDriver {
    const key = `${target.site}/${target.host}`;
    const state = () => this.power.get(key) ?? 'on';
    const boot = async () => {
      const failStage = this.faults.get(key) ?? bmc.fail_stage;
      if (failStage === 'power') throw new Error(`simulated BMC failure on ${key}`);
      this.power.set(key, 'on');
      await this.record(key);
      this.schedule(target, durationMs(bmc.boot_delay), failStage);
    };
    return {
      powerState: () => Promise.resolve(state()),
      powerOn: boot,
      powerCycle: boot,
      powerOff: () => {
        this.power.set(key, 'off');
        return Promise.resolve();
      },
      softOff: () => {
        this.power.set(key, 'off');
        return Promise.resolve();
      },
      setNextBoot: () => Promise.resolve(),
    };
  }

  private async record(key: string): Promise<void> {
    if (!this.options.cycleLog) return;
    await mkdir(path.dirname(this.options.cycleLog), { recursive: true });
    await appendFile(this.options.cycleLog, `${key}\n`);
  }

  private schedule(target: PowerTarget, bootDelayMs: number, failStage: SimBmc['fail_stage']): void {
    const delay = bootDelayMs * (this.options.timeScale ?? 1);
    for (const [kind, fraction] of BOOT_SEQUENCE) {
      if (kind === failStage) break;
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        this.options.events.emit({ kind, mac: target.mac, at: new Date().toISOString(), detail: 'sim' });
      }, delay * fraction);
      this.timers.add(timer);
    }
  }

  close(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }
}

/** Power cycles per `site/host` recorded in a cycle log. */
export async function readCycleLog(file: string): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  let text = '';
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  for (const key of text.split('\n').filter(Boolean)) counts.set(key, (counts.get(key) ?? 0) + 1);
  return counts;
}
