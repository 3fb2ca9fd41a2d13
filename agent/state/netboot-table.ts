import type { ArmEntry } from '../../schemas/agent';
import { readJsonIfExists, writeFileAtomic } from '../../activities/store/atomic-file';

/**
 * Which MACs are armed, kept on the agent's disk (written atomically) so an agent restart neither
 * forgets an armed host nor leaves one looping in PXE. An unarmed MAC boots from its local disk.
 */
export class NetbootTable {
  // The load is shared: two first calls at once must not each build a map and lose the other's entry.
  private entries: Promise<Map<string, ArmEntry>> | undefined;
  /** The same map once read: the DHCP loop answers synchronously (`isArmedNow`). */
  private loaded: Map<string, ArmEntry> | undefined;
  private writing: Promise<void> = Promise.resolve();

  constructor(private readonly file: string) {}

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

  private async save(entries: Map<string, ArmEntry>): Promise<void> {
    const write = () => writeFileAtomic(this.file, JSON.stringify([...entries.values()], null, 2));
    this.writing = this.writing.then(write, write);
    await this.writing;
  }

  async arm(entry: ArmEntry): Promise<void> {
    const entries = await this.load();
    entries.set(entry.mac, entry);
    await this.save(entries);
  }

  /** Disarms a MAC; with a workflow id, only if that workflow armed it (a newer arm is left alone). */
  async disarm(mac: string, workflowId?: string): Promise<boolean> {
    const entries = await this.load();
    const current = entries.get(mac);
    if (!current || (workflowId && current.workflowId !== workflowId)) return false;
    entries.delete(mac);
    await this.save(entries);
    return true;
  }

  async lookup(mac: string): Promise<ArmEntry | undefined> {
    return (await this.load()).get(mac);
  }

  async list(): Promise<ArmEntry[]> {
    return [...(await this.load()).values()];
  }
}
