import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { formatDiagnostic } from '../../activities/sot/diagnostics';
import { validateSot } from '../../activities/sot/validate';
import type { Model } from '../../schemas/model';
import { CliError, type Io } from './io';

const run = promisify(execFile);

async function isDirectory(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

/** Validates a SoT directory; prints its problems and fails when it is not valid. */
export async function loadValid(dir: string, io: Io, label = dir): Promise<Model> {
  const result = await validateSot(dir);
  if (result.model) return result.model;
  for (const d of result.diagnostics) io.err(`${formatDiagnostic(d)}\n`);
  throw new CliError(`${label} is not a valid source of truth (${result.diagnostics.length} problems)`, 1);
}

/**
 * The SoT as it was at a git revision: `git archive` of the same subdirectory of the repository that
 * holds `dir`, unpacked into a temporary directory that `cleanup` removes.
 */
export async function checkoutRevision(
  dir: string,
  ref: string,
): Promise<{ root: string; cleanup: () => Promise<void> }> {
  let prefix: string;
  let top: string;
  try {
    prefix = (await run('git', ['-C', dir, 'rev-parse', '--show-prefix'])).stdout.trim();
    top = (await run('git', ['-C', dir, 'rev-parse', '--show-toplevel'])).stdout.trim();
    await run('git', ['-C', dir, 'rev-parse', '--verify', '--quiet', `${ref}^{commit}`]);
  } catch {
    throw new CliError(
      `--from ${ref}: not a directory, and not a git revision of the repository holding ${dir}`,
    );
  }
  const tmp = await mkdtemp(path.join(tmpdir(), 'vaquero-rev-'));
  const cleanup = () => rm(tmp, { recursive: true, force: true });
  try {
    const archive = path.join(tmp, 'rev.tar');
    const tree = prefix ? `${ref}:${prefix.replace(/\/$/, '')}` : ref;
    await run('git', ['-C', top, 'archive', '--format=tar', `--output=${archive}`, tree]);
    await run('tar', ['-x', '-f', archive, '-C', tmp]);
    await rm(archive);
  } catch (err) {
    await cleanup();
    const detail = (err as { stderr?: string }).stderr?.trim().split('\n')[0] ?? (err as Error).message;
    throw new CliError(`--from ${ref}: cannot read the source of truth at that revision: ${detail}`);
  }
  return { root: tmp, cleanup };
}

/** Loads the `--from` side of a plan: a directory, or a git revision of the repository holding `dir`. */
export async function loadFrom(from: string, dir: string, io: Io): Promise<Model> {
  const asDir = path.resolve(io.cwd(), from);
  if (await isDirectory(asDir)) return loadValid(asDir, io, `--from ${from}`);
  const { root, cleanup } = await checkoutRevision(dir, from);
  try {
    if (!(await isDirectory(root)))
      throw new CliError(`--from ${from}: the source of truth did not exist at that revision`);
    return await loadValid(root, io, `--from ${from}`);
  } finally {
    await cleanup();
  }
}
