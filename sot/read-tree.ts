import type { Dirent } from 'node:fs';
import { lstat, readdir, readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Diagnostic } from './diagnostics';

/** No file of a source of truth is larger than this: a template or a hosts file, not a disk image. */
export const MAX_FILE_BYTES = 8 * 1024 * 1024;
/** A source of truth with more files than this is almost certainly the wrong directory. */
export const MAX_FILES = 20_000;
/**
 * All files together: 100,000 hosts (the most a source of truth may hold) are some 35 MiB of YAML. What
 * is read stays in memory until it is parsed, so the walk stops here rather than run out of memory.
 */
export const MAX_TOTAL_BYTES = 128 * 1024 * 1024;

export interface TextFile {
  /** Path relative to the root, with forward slashes. */
  rel: string;
  text: string;
}

export interface Tree {
  files: TextFile[];
  problems: Diagnostic[];
  /** Entries `include` refused, relative to the root; a directory (or a symlink) ends with a slash. */
  ignored: string[];
  /** The walk stopped at a limit: files of any kind may be missing. */
  truncated: boolean;
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

/** One walk of a tree; `readTree` is its entry point. */
class TreeWalker {
  readonly files: TextFile[] = [];
  readonly problems: Diagnostic[] = [];
  readonly ignored: string[] = [];
  truncated = false;
  // Only a directory that contains itself is a loop; one reached by two paths is walked twice, and the
  // entry budget bounds what a web of symlinks can cost.
  private readonly ancestors = new Set<string>();
  private budget = MAX_FILES;
  private bytes = MAX_TOTAL_BYTES;

  constructor(
    private readonly realRoot: string,
    private readonly include: (rel: string) => boolean,
  ) {}

  /** `absDir` is a real path: each symlink is resolved once, where it is met, not in every path below it. */
  async walk(absDir: string, relDir: string): Promise<void> {
    if (this.ancestors.has(absDir)) {
      this.problems.push(fileProblem(relDir || '.', 'symlink loop (to a directory that contains it)'));
      return;
    }
    let entries: Dirent[];
    try {
      entries = (await readdir(absDir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
    } catch (err) {
      this.problems.push(fileProblem(relDir || '.', describeFsError(err)));
      return;
    }
    this.ancestors.add(absDir);
    for (const entry of entries) {
      if (entry.name.startsWith('.')) continue;
      const rel = relDir ? `${relDir}/${entry.name}` : entry.name;
      const maybeDir = entry.isDirectory() || entry.isSymbolicLink();
      if (!this.include(rel) && !(maybeDir && this.include(`${rel}/`))) {
        this.ignored.push(maybeDir ? `${rel}/` : rel);
        continue;
      }
      if (--this.budget < 0) {
        const message = `too many files (more than ${MAX_FILES}); is this the right directory?`;
        if (this.budget === -1) this.problems.push(fileProblem(rel, message));
        this.truncated = true;
        break;
      }
      if (this.bytes < 0) break;
      await this.visit(path.join(absDir, entry.name), rel);
    }
    this.ancestors.delete(absDir);
  }

  private async visit(abs: string, rel: string): Promise<void> {
    let real = abs;
    let info;
    try {
      info = await lstat(abs);
      if (info.isSymbolicLink()) {
        real = await realpath(abs);
        if (real !== this.realRoot && !real.startsWith(this.realRoot + path.sep)) {
          this.problems.push(fileProblem(rel, 'symlink points outside the source of truth'));
          return;
        }
        info = await stat(real);
      }
    } catch (err) {
      this.problems.push(fileProblem(rel, describeFsError(err)));
      return;
    }
    if (info.isDirectory()) return this.walk(real, rel);
    if (!this.include(rel)) return;
    if (!info.isFile()) {
      this.problems.push(fileProblem(rel, 'not a regular file'));
      return;
    }
    if (this.bytes < 0) return;
    if (info.size <= MAX_FILE_BYTES) this.bytes -= info.size;
    if (this.bytes < 0) {
      this.truncated = true;
      const message = `too much to read (more than ${MAX_TOTAL_BYTES / 1024 / 1024} MiB of files); is this the right directory?`;
      this.problems.push(fileProblem(rel, message));
      return;
    }
    const read = await readText(real, rel, info.size);
    if ('text' in read) this.files.push(read);
    else this.problems.push(read);
  }
}

/**
 * Reads every regular file under `root` that `include` accepts, following symlinks that stay inside it.
 * `include` is asked about a directory as `rel/`; an entry it refuses is neither read nor stat'ed, so a
 * dangling link beside the source of truth (a README in a Git checkout) is no problem. Unreadable, huge,
 * binary and looping entries become problems; the walk goes on so that all problems are reported at once.
 */
export async function readTree(root: string, include: (rel: string) => boolean): Promise<Tree> {
  const rootProblem = await checkRoot(root);
  if (rootProblem)
    return { files: [], problems: [fileProblem(root, rootProblem)], ignored: [], truncated: false };
  const realRoot = await realpath(root);
  const walker = new TreeWalker(realRoot, include);
  await walker.walk(realRoot, '');
  const { files, problems, ignored, truncated } = walker;
  return { files, problems, ignored, truncated };
}

/** Why `root` cannot be walked, or undefined when it is a directory. */
async function checkRoot(root: string): Promise<string | undefined> {
  try {
    if (!(await stat(root)).isDirectory()) return 'is not a directory';
    return undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return describeFsError(err);
    const link = await lstat(root).catch(() => undefined);
    return link?.isSymbolicLink() ? describeFsError(err) : 'no such directory';
  }
}
