import type { ArmEntry } from '../../schemas/agent';
import { readJsonIfExists, writeFileAtomic } from '../../activities/store/atomic-file';

/** Where the site's arms are held when an agent has a server (agent/feed/site-boot-client.ts). */
export interface SharedArms {
  /** Resolves with the site's revision once the arm is durable at the server. */
  arm(entry: ArmEntry): Promise<number>;
  disarm(mac: string, workflowId?: string): Promise<{ revision: number; disarmed: boolean }>;
}

/**
 * Which MACs are armed, kept on the agent's disk (written atomically) so an agent restart neither
 * forgets an armed host nor leaves one looping in PXE. An unarmed MAC boots from its local disk.
 * With `shared`, the server holds the site's arms (docs/ha.md): an arm or disarm completes there
 * first, and this file is the agent's cache of them, replaced as the agent's watch sees them move.
 */
export class NetbootTable {
  // The load is shared: two first calls at once must not each build a map and lose the other's entry.
  private entries: Promise<Map<string, ArmEntry>> | undefined;
  /** The same map once read: the DHCP loop answers synchronously (`isArmedNow`). */
  private loaded: Map<string, ArmEntry> | undefined;
  private writing: Promise<void> = Promise.resolve();
  /** The next write, not started yet: a change made now is in it. */
  private queued: Promise<void> | undefined;
  /** The newest site revision this cache holds: an older watch answer must not undo a newer arm. */
  private revision = -1;
  /** The epoch of the store that revision is of (SiteArms.epoch); none before the first answer. */
  private epoch: string | undefined;

  constructor(
    private readonly file: string,
    private readonly shared?: SharedArms,
  ) {}

  private load(): Promise<Map<string, ArmEntry>> {
    this.entries ??= (async () => {
      const list = (await readJsonIfExists(this.file)) as ArmEntry[] | undefined;
      this.loaded = new Map(list?.map((e) => [e.mac, e]));
      return this.loaded;
    })();
    return this.entries;
  }

  /** Whether a MAC is armed, from memory; false until the table has been read once (`list` reads it). */
  isArmedNow(mac: string): boolean {
    return this.loaded?.has(mac) ?? false;
  }

  /**
   * Writes the table after the write in progress. Changes made while a write waits to start join it
   * (it writes the map as it is when it starts): with a batch of hosts armed at once, one write of
   * the whole table instead of one per host, each of them O(armed hosts) (issue 12: agent CPU).
   */
  private save(entries: Map<string, ArmEntry>): Promise<void> {
    if (this.queued) return this.queued;
    const write = () => {
      // From here on, a change needs a later write: this one's content is taken now.
      this.queued = undefined;
      return writeFileAtomic(this.file, JSON.stringify([...entries.values()], null, 2));
    };
    const next = this.writing.then(write, write);
    this.writing = next;
    this.queued = next;
    return next;
  }

  async arm(entry: ArmEntry): Promise<void> {
    const revision = await this.shared?.arm(entry);
    const entries = await this.load();
    if (revision !== undefined) this.revision = Math.max(this.revision, revision);
    entries.set(entry.mac, entry);
    await this.save(entries);
  }

  /** Disarms a MAC; with a workflow id, only if that workflow armed it (a newer arm is left alone). */
  async disarm(mac: string, workflowId?: string): Promise<boolean> {
    const remote = await this.shared?.disarm(mac, workflowId);
    const entries = await this.load();
    if (remote) {
      this.revision = Math.max(this.revision, remote.revision);
      const mine = entries.get(mac);
      if (remote.disarmed && mine && (!workflowId || mine.workflowId === workflowId)) {
        entries.delete(mac);
        await this.save(entries);
      }
      return remote.disarmed;
    }
    const current = entries.get(mac);
    if (!current || (workflowId && current.workflowId !== workflowId)) return false;
    entries.delete(mac);
    await this.save(entries);
    return true;
  }

  /**
   * The site's arms as the server's watch returned them; false (kept as is) when older than held,
   * unless `restarted`: the server's counter began again (its store was wiped or restored).
   */
  async replace(
    arms: readonly ArmEntry[],
    revision: number,
    restarted = false,
    epoch?: string,
  ): Promise<boolean> {
    const entries = await this.load();
    if (revision < this.revision && !restarted) return false;
    this.revision = revision;
    this.epoch = epoch;
    entries.clear();
    for (const entry of arms) entries.set(entry.mac, entry);
    await this.save(entries);
    return true;
  }

  /** The site revision the cache holds (-1: none yet, e.g. the file of a previous run). */
  heldRevision(): number {
    return this.revision;
  }

  /** The epoch of the store the cache's revision is of; undefined before the first watch answer. */
  heldEpoch(): string | undefined {
    return this.epoch;
  }

  async lookup(mac: string): Promise<ArmEntry | undefined> {
    return (await this.load()).get(mac);
  }

  async list(): Promise<ArmEntry[]> {
    return [...(await this.load()).values()];
  }
}
