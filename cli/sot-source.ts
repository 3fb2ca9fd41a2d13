import { stat } from 'node:fs/promises';
import path from 'node:path';
import { formatDiagnostic } from '../sot/diagnostics';
import type { HostsFileCache } from '../sot/fast-hosts';
import { checkoutRevision, RevisionError } from '../sot/git-checkout';
import { validateSot } from '../sot/validate';
import type { Model } from '../schemas/model';
import { CliError, type Io } from './io';

async function isDirectory(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

/** Validates a SoT directory; prints its problems and fails when it is not valid. */
export async function loadValid(dir: string, io: Io, label = dir, cache?: HostsFileCache): Promise<Model> {
  const result = await validateSot(dir, cache);
  if (result.model) return result.model;
  for (const d of result.diagnostics) io.err(`${formatDiagnostic(d)}\n`);
  throw new CliError(`${label} is not a valid source of truth (${result.diagnostics.length} problems)`, 1);
}

/** Loads the `--from` side of a plan: a directory, or a git revision of the repository holding `dir`. */
export async function loadFrom(from: string, dir: string, io: Io, cache?: HostsFileCache): Promise<Model> {
  const asDir = path.resolve(io.cwd(), from);
  if (await isDirectory(asDir)) return loadValid(asDir, io, `--from ${from}`, cache);
  const { root, cleanup } = await checkoutRevision(dir, from).catch((err: unknown) => {
    throw err instanceof RevisionError ? new CliError(`--from ${err.message} (nor a directory)`) : err;
  });
  try {
    if (!(await isDirectory(root)))
      throw new CliError(`--from ${from}: the source of truth did not exist at that revision`);
    return await loadValid(root, io, `--from ${from}`, cache);
  } finally {
    await cleanup();
  }
}
