import { lstat, readdir, readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Diagnostic } from './diagnostics';

/** No file of a source of truth is larger than this: a template or a hosts file, not a disk image. */
export const MAX_FILE_BYTES = 8 * 1024 * 1024;
/** A source of truth with more files than this is almost certainly the wrong directory. */
export const MAX_FILES = 20_000;

export interface TextFile {
  /** Path relative to the root, with forward slashes. */
  rel: string;
  text: string;
}

export interface Tree {
  files: TextFile[];
  problems: Diagnostic[];
}

function fileProblem(rel: string, message: string): Diagnostic {
  return { file: rel, line: 1, path: '(file)', message, check: 'file' };
}

function describeFsError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  switch (e.code) {
    case 'EACCES':
    case 'EPERM':
      return 'cannot be read: permission denied';
    case 'ELOOP':
      return 'symlink loop';
    case 'ENOENT':
      return 'dangling symlink (its target does not exist)';
    case 'EISDIR':
      return 'is a directory';
    default:
      return `cannot be read: ${e.code ?? e.message}`;
  }
}

const decoder = new TextDecoder('utf-8', { fatal: true });

async function readText(abs: string, rel: string, size: number): Promise<TextFile | Diagnostic> {
  if (size > MAX_FILE_BYTES) {
    const mib = (size / 1024 / 1024).toFixed(1);
    return fileProblem(rel, `file too large (${mib} MiB; the limit is ${MAX_FILE_BYTES / 1024 / 1024} MiB)`);
  }
  let bytes: Buffer;
  try {
    bytes = await readFile(abs);
  } catch (err) {
    return fileProblem(rel, describeFsError(err));
  }
  if (bytes.includes(0)) return fileProblem(rel, 'binary file (contains NUL bytes); expected UTF-8 text');
  try {
    return { rel, text: decoder.decode(bytes) };
  } catch {
    return fileProblem(rel, 'binary file (not valid UTF-8); expected UTF-8 text');
  }
}

/**
 * Reads every regular file under `root`, following symlinks that stay inside it. Unreadable, huge,
 * binary and looping entries become problems; the walk goes on so that all problems are reported at once.
 */
export async function readTree(root: string, include: (rel: string) => boolean): Promise<Tree> {
  const files: TextFile[] = [];
  const problems: Diagnostic[] = [];
  let realRoot = root;
  const seenDirs = new Set<string>();

  async function walk(absDir: string, relDir: string): Promise<void> {
    const real = await realpath(absDir);
    if (seenDirs.has(real)) {
      problems.push(fileProblem(relDir || '.', 'symlink loop (directory already visited)'));
      return;
    }
    seenDirs.add(real);
    let entries: string[];
    try {
      entries = (await readdir(absDir)).sort();
    } catch (err) {
      problems.push(fileProblem(relDir || '.', describeFsError(err)));
      return;
    }
    for (const name of entries) {
      if (name.startsWith('.')) continue;
      const abs = path.join(absDir, name);
      const rel = relDir ? `${relDir}/${name}` : name;
      if (files.length + problems.length >= MAX_FILES) {
        problems.push(
          fileProblem(rel, `too many files (more than ${MAX_FILES}); is this the right directory?`),
        );
        return;
      }
      await visit(abs, rel);
    }
  }

  async function visit(abs: string, rel: string): Promise<void> {
    let info;
    try {
      const link = await lstat(abs);
      if (link.isSymbolicLink()) {
        const target = await realpath(abs);
        if (target !== realRoot && !target.startsWith(realRoot + path.sep)) {
          problems.push(fileProblem(rel, 'symlink points outside the source of truth'));
          return;
        }
      }
      info = await stat(abs);
    } catch (err) {
      problems.push(fileProblem(rel, describeFsError(err)));
      return;
    }
    if (info.isDirectory()) return walk(abs, rel);
    if (!info.isFile()) {
      if (include(rel)) problems.push(fileProblem(rel, 'not a regular file'));
      return;
    }
    if (!include(rel)) return;
    const read = await readText(abs, rel, info.size);
    if ('text' in read) files.push(read);
    else problems.push(read);
  }

  let rootInfo;
  try {
    rootInfo = await stat(root);
  } catch (err) {
    return { files, problems: [fileProblem(root, describeFsError(err))] };
  }
  if (!rootInfo.isDirectory()) return { files, problems: [fileProblem(root, 'is not a directory')] };
  realRoot = await realpath(root);
  await walk(root, '');
  return { files, problems };
}
