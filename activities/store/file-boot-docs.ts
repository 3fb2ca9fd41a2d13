import { EventEmitter } from 'node:events';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { readFileIfExists, writeFileAtomic } from './atomic-file';
import { parseDoc, type BootDoc, type BootDocs, type StoredDoc } from './boot-state-store';

const checkSite = (site: string) => {
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(site)) throw new Error(`invalid site ${JSON.stringify(site)}`);
  return site;
};

/**
 * The site documents of one server (no HA): one JSON file per site under `dir`, written atomically
 * and synced. Versions are kept in memory, so one server process owns the directory (HA uses etcd).
 */
export class FileBootDocs implements BootDocs {
  private readonly cache = new Map<string, { doc: BootDoc; version: number }>();
  private readonly writes = new Map<string, Promise<void>>();
  private readonly events = new EventEmitter().setMaxListeners(0);

  constructor(private readonly dir: string) {}

  private file(site: string): string {
    return path.join(this.dir, `${checkSite(site)}.json`);
  }

  async read(site: string): Promise<StoredDoc> {
    let entry = this.cache.get(site);
    if (!entry) {
      const doc = parseDoc(await readFileIfExists(this.file(site)));
      entry = this.cache.get(site) ?? { doc, version: 0 };
      this.cache.set(site, entry);
    }
    return { doc: structuredClone(entry.doc), version: String(entry.version) };
  }

  async write(site: string, doc: BootDoc, version: string | undefined): Promise<boolean> {
    const entry = this.cache.get(site);
    if (!entry || String(entry.version) !== version) return false;
    // Taken before the write is awaited: a concurrent compare-and-set sees the new version at once.
    const next = { doc: structuredClone(doc), version: entry.version + 1 };
    this.cache.set(site, next);
    const write = () => writeFileAtomic(this.file(site), JSON.stringify(next.doc));
    const done = (this.writes.get(site) ?? Promise.resolve()).then(write, write);
    this.writes.set(site, done);
    try {
      await done;
    } catch (err) {
      // The disk did not take it: the next reader starts from the file again.
      this.cache.delete(site);
      throw err;
    }
    this.events.emit(site);
    return true;
  }

  async sites(): Promise<string[]> {
    try {
      const names = await readdir(this.dir);
      return names
        .filter((n) => /^[a-z0-9][a-z0-9-]{0,62}\.json$/.test(n))
        .map((n) => n.slice(0, -'.json'.length))
        .sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  changed(site: string, ms: number, signal?: AbortSignal, version?: string): Promise<void> {
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        this.events.off(site, finish);
        signal?.removeEventListener('abort', finish);
        resolve();
      };
      const timer = setTimeout(finish, ms);
      this.events.once(site, finish);
      signal?.addEventListener('abort', finish, { once: true });
      // Written between the caller's read and this call: that write's event has gone already.
      const now = this.cache.get(site)?.version;
      if (version !== undefined && now !== undefined && String(now) !== version) finish();
    });
  }
}
