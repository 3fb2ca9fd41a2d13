// The bytes a TFTP transfer sends. Boot firmware files (ipxe.efi, undionly.kpxe: under a few MB, fetched
// by every machine of a rack at once) are read once and shared from memory by every transfer; bigger
// files are read per transfer in large chunks, each DATA packet a view into the chunk (no copy).
import { close, open, read } from 'node:fs';

const CHUNK = 1 << 20;

/** Byte ranges of one file: `slice` answers from memory, `fill` loads the chunk a range needs. */
export interface Source {
  readonly size: number;
  covers(start: number, end: number): boolean;
  slice(start: number, end: number): Buffer;
  fill(start: number, end: number, done: (err: Error | null) => void): void;
  close(): void;
}

export function memorySource(data: Buffer): Source {
  return {
    size: data.length,
    covers: () => true,
    slice: (start, end) => data.subarray(start, end),
    fill: (_s, _e, done) => done(null),
    close: () => undefined,
  };
}

/** Opens `path` for chunked reads; the chunk buffer is replaced, never overwritten (sends may hold views). */
export function openChunked(path: string, size: number): Promise<Source> {
  return new Promise((resolve, reject) => {
    open(path, 'r', (err, fd) => {
      if (err) return reject(err);
      let buf = Buffer.alloc(0);
      let at = 0;
      let closed = false;
      resolve({
        size,
        covers: (start, end) => start >= at && Math.min(end, size) <= at + buf.length,
        slice: (start, end) => buf.subarray(start - at, Math.min(end, size) - at),
        fill(start, end, done) {
          const want = Math.min(Math.max(CHUNK, end - start), size - start);
          const next = Buffer.allocUnsafe(want);
          read(fd, next, 0, want, start, (e, n) => {
            if (e) return done(e);
            if (n !== want) return done(new Error(`short read at ${start}: the file changed`));
            buf = next;
            at = start;
            done(null);
          });
        },
        close() {
          if (closed) return;
          closed = true;
          close(fd, () => undefined);
        },
      });
    });
  });
}
