// Maps a TFTP filename to a regular file inside the root, or to the TFTP error a client gets.
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';

export type ResolveResult =
  | { ok: true; path: string; size: number; mtimeMs: number }
  | { ok: false; error: 'access' | 'not-found'; reason: string };

/**
 * `root` must already be a real path (no symlinks), so a prefix check on the real path of the
 * target catches symlinks that lead out of it. Some PXE ROMs send `\` as the separator, so both
 * separators count when looking for `..`.
 */
export async function resolveFile(root: string, file: string): Promise<ResolveResult> {
  if (file.length === 0) return { ok: false, error: 'not-found', reason: 'empty filename' };
  if (path.isAbsolute(file) || file.startsWith('\\')) {
    return { ok: false, error: 'access', reason: 'absolute path' };
  }
  if (file.split(/[\\/]/).includes('..')) return { ok: false, error: 'access', reason: '".." in path' };
  if (file.includes('\0')) return { ok: false, error: 'access', reason: 'NUL in path' };
  let real: string;
  try {
    real = await realpath(path.join(root, file));
  } catch {
    return { ok: false, error: 'not-found', reason: 'no such file' };
  }
  if (!real.startsWith(root + path.sep)) {
    return { ok: false, error: 'access', reason: 'resolves outside the root' };
  }
  const st = await stat(real).catch(() => undefined);
  if (!st?.isFile()) return { ok: false, error: 'not-found', reason: 'not a regular file' };
  return { ok: true, path: real, size: st.size, mtimeMs: st.mtimeMs };
}
