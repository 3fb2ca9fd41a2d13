// Whole-file state on the local disk (model revisions, pointers, the netboot table, the agent's
// journals): a reader, or a process started after a crash, sees the old version or the new one,
// never half of one. By default also after a power loss: without an fsync of the bytes before the
// rename and of the directory after it, ext4 and xfs may commit the rename first and leave an empty
// file under the name.
import { randomBytes } from 'node:crypto';
import {
  appendFileSync,
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { access, appendFile, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';

export interface DurableOptions {
  /**
   * Waits until the bytes (and, for a new name, the directory entry) are on the disk, so the write
   * survives a power loss, not just a crash. On unless a caller has a measured reason to give it up.
   */
  fsync?: boolean;
}

const durable = (opts: DurableOptions) => opts.fsync ?? true;

const isMissing = (err: unknown) => (err as NodeJS.ErrnoException).code === 'ENOENT';

// Unique per call: two writers of one file (two processes, or two promises in one) must not share
// a temp file, or one renames the other's half-written bytes into place.
const tempName = (file: string) => `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function syncDirSync(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

async function writeTemp(tmp: string, data: string, opts: DurableOptions): Promise<void> {
  const handle = await open(tmp, 'w');
  try {
    await handle.writeFile(data);
    if (durable(opts)) await handle.sync();
  } finally {
    await handle.close();
  }
}

function writeTempSync(tmp: string, data: string, opts: DurableOptions): void {
  const fd = openSync(tmp, 'w');
  try {
    writeFileSync(fd, data);
    if (durable(opts)) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Replaces `file` whole (its directory created when missing) through a temp file renamed over it. */
export async function writeFileAtomic(file: string, data: string, opts: DurableOptions = {}): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = tempName(file);
  try {
    await writeTemp(tmp, data, opts);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  // The rename itself is only durable once the directory entry is.
  if (durable(opts)) await syncDir(path.dirname(file));
}

/** `writeFileAtomic` for callers that cannot await (constructors, synchronous sinks). */
export function writeFileAtomicSync(file: string, data: string, opts: DurableOptions = {}): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = tempName(file);
  try {
    writeTempSync(tmp, data, opts);
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  if (durable(opts)) syncDirSync(path.dirname(file));
}

/** The file's text, or undefined when it does not exist; any other failure is thrown. */
export async function readFileIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw err;
  }
}

export function readFileIfExistsSync(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw err;
  }
}

/** The file parsed as JSON (for the caller's schema to check), or undefined when it does not exist. */
export async function readJsonIfExists(file: string): Promise<unknown> {
  const text = await readFileIfExists(file);
  return text === undefined ? undefined : (JSON.parse(text) as unknown);
}

/** Appends one line to a log file, creating it and its directory when missing. */
export async function appendLine(file: string, line: string, opts: DurableOptions = {}): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  if (!durable(opts)) return appendFile(file, `${line}\n`);
  const created = await access(file).then(
    () => false,
    () => true,
  );
  const handle = await open(file, 'a');
  try {
    await handle.appendFile(`${line}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  // A new file's name is only durable once its directory is.
  if (created) await syncDir(path.dirname(file));
}

export function appendLineSync(file: string, line: string, opts: DurableOptions = {}): void {
  mkdirSync(path.dirname(file), { recursive: true });
  if (!durable(opts)) return appendFileSync(file, `${line}\n`);
  const created = !existsSync(file);
  const fd = openSync(file, 'a');
  try {
    writeFileSync(fd, `${line}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  if (created) syncDirSync(path.dirname(file));
}
