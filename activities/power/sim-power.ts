import { durationMs } from '../../schemas/common';
import type { Bmc } from '../../schemas/host';
import type { BootEventKind } from '../../schemas/rollout';
import type { BootEventSink } from '../../schemas/rollout';
import {
  appendLine,
  readFileIfExists,
  readFileIfExistsSync,
  writeFileAtomicSync,
} from '../store/atomic-file';
import type { PowerDriver, PowerState, PowerTarget } from './power-driver';

type SimBmc = Extract<Bmc, { type: 'sim' }>;

/**
 * When each boot event comes after a power cycle: a fraction of the host's boot_delay, plus a few
 * hundred ms (scaled, at most 5% of the delay). DHCP once the firmware's POST is over, then, as on a
 * real machine, the iPXE script and the kernel within about a second; the checkpoint at the end.
 */
const BOOT_SEQUENCE: [BootEventKind, number, number][] = [
  ['dhcp', 0.3, 0],
  ['ipxe', 0.3, 400],
  ['kernel', 0.3, 900],
  ['checkpoint', 1, 0],
];

export interface SimLabOptions {
  events: BootEventSink;
  /** Every power cycle is appended here (`site/host`), so tests count cycles across agent restarts. */
  cycleLog?: string;
  /** Multiplies every boot_delay: 0.01 turns a 30 s boot into 0.3 s for tests. */
  timeScale?: number;
  /** How long the simulated BMC takes to answer a power command (the machine acts at once). */
  powerLatencyMs?: number;
  /**
   * Boots in progress are kept here, so that a machine whose agent is restarted mid-boot still
   * finishes booting, as a real one would.
   */
  bootsFile?: string;
}

interface BootInProgress {
  key: string;
  mac: string;
  startedAt: number;
  delayMs: number;
  failStage?: SimBmc['fail_stage'];
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

  private boots: BootInProgress[] = [];

  constructor(private readonly options: SimLabOptions) {
    if (!options.bootsFile) return;
    const text = readFileIfExistsSync(options.bootsFile);
    if (text !== undefined) this.boots = JSON.parse(text) as BootInProgress[];
    for (const boot of this.boots) this.schedule(boot);
  }

  driver(target: PowerTarget, bmc: SimBmc): PowerDriver {
    const key = `${target.site}/${target.host}`;
    const state = () => this.power.get(key) ?? 'on';
    const boot = async () => {
      const failStage = this.faults.get(key) ?? bmc.fail_stage;
      if (failStage === 'power') throw new Error(`simulated BMC failure on ${key}`);
      this.power.set(key, 'on');
      await this.record(key);
      const delayMs = durationMs(bmc.boot_delay) * (this.options.timeScale ?? 1);
      const boot = { key, mac: target.mac, startedAt: Date.now(), delayMs, failStage };
      this.boots = [...this.boots.filter((b) => b.key !== key), boot];
      this.saveBoots();
      this.schedule(boot);
      if (this.options.powerLatencyMs)
        await new Promise((resolve) => setTimeout(resolve, this.options.powerLatencyMs));
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

  // The sim's files outlive a killed process (an agent killed mid-boot in a test), not a power loss
  // of the machine the sim runs on: written atomically, without fsync. With fsync, the sim BMC was
  // most of the rollout benchmark's "Vaquero" CPU on the agent side (3.3 of 11.2 s for 300 hosts).
  private async record(key: string): Promise<void> {
    if (this.options.cycleLog) await appendLine(this.options.cycleLog, key, { fsync: false });
  }

  private saveBoots(): void {
    if (this.options.bootsFile)
      writeFileAtomicSync(this.options.bootsFile, JSON.stringify(this.boots), { fsync: false });
  }

  /** Emits the boot's remaining events at their times (at once for those already due). */
  private schedule(boot: BootInProgress): void {
    let last = 0;
    const scale = this.options.timeScale ?? 1;
    for (const [kind, fraction, afterMs] of BOOT_SEQUENCE) {
      if (kind === boot.failStage) break;
      const due = boot.startedAt + boot.delayMs * fraction + Math.min(afterMs * scale, boot.delayMs * 0.05);
      last = Math.max(last, due);
      const timer = setTimeout(
        () => {
          this.timers.delete(timer);
          this.options.events.emit({ kind, mac: boot.mac, at: new Date().toISOString(), detail: 'sim' });
        },
        Math.max(0, due - Date.now()),
      );
      this.timers.add(timer);
    }
    const done = setTimeout(
      () => {
        this.timers.delete(done);
        this.boots = this.boots.filter((b) => b !== boot);
        this.saveBoots();
      },
      Math.max(0, last - Date.now()) + 1,
    );
    this.timers.add(done);
  }

  close(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }
}

/** Power cycles per `site/host` recorded in a cycle log. */
export async function readCycleLog(file: string): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  const text = (await readFileIfExists(file)) ?? '';
  for (const key of text.split('\n').filter(Boolean)) counts.set(key, (counts.get(key) ?? 0) + 1);
  return counts;
}
