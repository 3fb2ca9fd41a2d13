// Keeps the agent's netboot table in step with the site's arms at the server (docs/ha.md): a long
// poll that answers within a second of any agent's arm or disarm. The boot services never wait on it:
// they read the table, so a partitioned agent keeps serving the arms it last saw.
import type { ArmEntry, SiteArms } from '../../schemas/agent';
import type { BootEvent, BootEventSink } from '../../schemas/rollout';
import type { Logger } from './event-delivery';
import type { NetbootTable } from './netboot-table';

export interface ArmsSource {
  arms(since: number, waitMs: number, epoch?: string): Promise<SiteArms>;
  seen(seen: { mac: string; at: string }[]): Promise<void>;
}

export interface ArmsWatch {
  /** Resolves once the first answer is in the table (or the first attempt failed). */
  ready: Promise<void>;
  stop(): Promise<void>;
}

const describe = (err: unknown) => (err instanceof Error ? err.message : String(err));

export function watchArms(
  source: ArmsSource,
  table: NetbootTable,
  logger: Logger,
  options: { waitMs?: number; retryMs?: number } = {},
): ArmsWatch {
  const waitMs = options.waitMs ?? 20_000;
  const retryMs = options.retryMs ?? 1_000;
  let stopping = false;
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  let wake: () => void = () => undefined;
  const loop = async () => {
    let failing = false;
    while (!stopping) {
      try {
        const since = table.heldRevision();
        const held = table.heldEpoch();
        const site = await source.arms(since, waitMs, held);
        if (stopping) break;
        // Every revision this agent holds came from the server's counter, which only grows: an answer
        // below the one asked about means the store began again, and its state is the site's now.
        // So does another epoch, even at the same revision (a new store that got as far).
        const otherStore = Boolean(held && site.epoch && site.epoch !== held);
        const restarted = site.revision < since || otherStore;
        const back = { held: since, revision: site.revision, ...(otherStore ? { epoch: site.epoch } : {}) };
        if (site.revision < since)
          logger.warn('site arms revision went back (store wiped or restored): taken whole', back);
        else if (otherStore) logger.warn('site arms of another store (epoch changed): taken whole', back);
        if (restarted || site.revision !== table.heldRevision() || site.epoch !== held)
          await table.replace(site.arms, site.revision, restarted, site.epoch);
        if (failing) logger.info('site arms reachable again', { revision: site.revision });
        failing = false;
      } catch (err) {
        // The stop cut the long poll off: no warning, and no retry timer to hold the process.
        if (stopping) break;
        if (!failing) logger.warn('site arms unreachable: serving the cached ones', { error: describe(err) });
        failing = true;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, retryMs);
          wake = () => (clearTimeout(timer), resolve());
        });
      }
      markReady();
    }
  };
  const done = loop();
  return {
    ready,
    async stop() {
      stopping = true;
      wake();
      // A long poll in flight ends with its request's timeout; nothing waits for it.
      await Promise.race([done, new Promise((resolve) => setTimeout(resolve, 100).unref())]);
    },
  };
}

/**
 * Passes boot events on and reports, in batches, when armed MACs were heard: the evidence by which a
 * power cycle left in doubt by a crashed agent is settled on another (activities/agent-activities.ts).
 */
export class SeenReporter implements BootEventSink {
  private pending = new Map<string, string>();
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly inner: BootEventSink,
    private readonly source: Pick<ArmsSource, 'seen'>,
    private readonly armed: (mac: string) => ArmEntry | boolean | undefined,
    private readonly logger: Logger,
    flushMs = 200,
  ) {
    this.timer = setInterval(() => void this.flush(), flushMs);
    this.timer.unref();
  }

  emit(event: BootEvent): void {
    if (this.armed(event.mac)) this.pending.set(event.mac, event.at);
    this.inner.emit(event);
  }

  /** Sends what is pending; a failed batch is merged back and sent with the next. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      if (this.pending.size === 0) return;
      const batch = this.pending;
      this.pending = new Map();
      try {
        const all = [...batch].map(([mac, at]) => ({ mac, at }));
        // The server takes 512 a request (schemas/agent.ts): a boot storm goes in several.
        for (let i = 0; i < all.length; i += 512) await this.source.seen(all.slice(i, i + 512));
      } catch (err) {
        for (const [mac, at] of batch) if (!this.pending.has(mac)) this.pending.set(mac, at);
        this.logger.warn('boot traffic report failed; retried', { error: describe(err) });
      }
    });
    return this.flushing;
  }

  close(): void {
    clearInterval(this.timer);
  }
}
