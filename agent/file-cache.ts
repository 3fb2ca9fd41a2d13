// Whole files kept in memory, shared by every transfer of them: the boot files a rack fetches at once
// (TFTP's ipxe.efi, HTTP's kernels and initrds) are read from disk once, not once per machine.
import { readFile } from 'node:fs/promises';

export interface FileCacheLimits {
  /** Files bigger than this are not cached (they are read per transfer). */
  fileMax: number;
  /** Bytes held in all; the least recently used files go first. */
  budget: number;
}

interface Cached {
  size: number;
  mtimeMs: number;
  data: Promise<Buffer>;
  /** Transfers holding the buffer (acquire): it is neither evicted nor uncounted before they end. */
  users: number;
  /** Out of the map (the file changed) while in use: counted until its last user is done. */
  retired: boolean;
}

/** A cached file's bytes for one transfer; `release` when the transfer has ended, once. */
export interface Lease {
  data: Promise<Buffer>;
  release: () => void;
}

export class FileCache {
  private readonly entries = new Map<string, Cached>();
  private bytes = 0;

  constructor(private readonly limits: FileCacheLimits = { fileMax: 8 << 20, budget: 64 << 20 }) {}

  /**
   * The whole file, read once per (path, size, mtime); undefined for files too big to cache. The
   * buffer may be evicted while the caller still sends it: for small files only (TFTP's), whose
   * budget such leftovers cannot outgrow by much. Big files go through `acquire`.
   */
  get(path: string, size: number, mtimeMs: number): Promise<Buffer> | undefined {
    return this.entry(path, size, mtimeMs, false)?.data;
  }

  /**
   * As `get`, but the buffer counts against the budget until `release`: the bytes held in memory
   * (cached or still being sent to a slow client) stay within the budget, and a file that would not
   * fit beside the ones in use is not cached (undefined: stream it). `onlyIfCached` (a Range request)
   * never reads a whole file for a part of it.
   */
  acquire(path: string, size: number, mtimeMs: number, onlyIfCached = false): Lease | undefined {
    const entry = this.entry(path, size, mtimeMs, onlyIfCached);
    if (!entry) return undefined;
    entry.users++;
    let released = false;
    return {
      data: entry.data,
      release: () => {
        if (released) return;
        released = true;
        entry.users--;
        if (entry.users === 0 && entry.retired) this.bytes -= entry.size;
      },
    };
  }

  private entry(path: string, size: number, mtimeMs: number, onlyIfCached: boolean): Cached | undefined {
    if (size > this.limits.fileMax || size > this.limits.budget) return undefined;
    const hit = this.entries.get(path);
    if (hit && hit.size === size && hit.mtimeMs === mtimeMs) {
      this.entries.delete(path);
      this.entries.set(path, hit);
      return hit;
    }
    if (onlyIfCached) return undefined;
    if (hit) this.drop(path, hit);
    // Room first: the least recently used files nobody is sending go; if that is not enough, no cache.
    for (const [key, old] of this.entries) {
      if (this.bytes + size <= this.limits.budget) break;
      if (old.users === 0) this.drop(key, old);
    }
    if (this.bytes + size > this.limits.budget) return undefined;
    const data = readFile(path).then((buf) => {
      if (buf.length !== size) throw new Error(`${path} changed while read`);
      return buf;
    });
    const entry: Cached = { size, mtimeMs, data, users: 0, retired: false };
    // A failed read is not kept: the next request tries again.
    data.catch(() => {
      if (this.entries.get(path) === entry) this.drop(path, entry);
    });
    this.entries.set(path, entry);
    this.bytes += size;
    return entry;
  }

  /** Out of the map; its bytes stop counting now, or when its last user is done. */
  private drop(path: string, entry: Cached): void {
    this.entries.delete(path);
    if (entry.users > 0) entry.retired = true;
    else this.bytes -= entry.size;
  }
}
