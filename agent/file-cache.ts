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
}

export class FileCache {
  private readonly entries = new Map<string, Cached>();
  private bytes = 0;

  constructor(private readonly limits: FileCacheLimits = { fileMax: 8 << 20, budget: 64 << 20 }) {}

  /** The whole file, read once per (path, size, mtime); undefined for files too big to cache. */
  get(path: string, size: number, mtimeMs: number): Promise<Buffer> | undefined {
    if (size > this.limits.fileMax || size > this.limits.budget) return undefined;
    const hit = this.entries.get(path);
    if (hit && hit.size === size && hit.mtimeMs === mtimeMs) {
      this.entries.delete(path);
      this.entries.set(path, hit);
      return hit.data;
    }
    if (hit) this.drop(path, hit);
    const data = readFile(path).then((buf) => {
      if (buf.length !== size) throw new Error(`${path} changed while read`);
      return buf;
    });
    const entry = { size, mtimeMs, data };
    // A failed read is not kept: the next request tries again.
    data.catch(() => {
      if (this.entries.get(path) === entry) this.drop(path, entry);
    });
    this.entries.set(path, entry);
    this.bytes += size;
    for (const [key, old] of this.entries) {
      if (this.bytes <= this.limits.budget || key === path) break;
      this.drop(key, old);
    }
    return data;
  }

  private drop(path: string, entry: Cached): void {
    this.entries.delete(path);
    this.bytes -= entry.size;
  }
}
