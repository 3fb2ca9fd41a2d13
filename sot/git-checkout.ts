import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export class RevisionError extends Error {
  override name = 'RevisionError';
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
    throw new RevisionError(`${ref}: not a git revision of the repository holding ${dir}`);
  }
  const tmp = await mkdtemp(path.join(tmpdir(), 'vaquero-rev-'));
  const cleanup = () => rm(tmp, { recursive: true, force: true });
  try {
    const archive = path.join(tmp, '.rev.tar');
    const tree = prefix ? `${ref}:${prefix.replace(/\/$/, '')}` : ref;
    await run('git', ['-C', top, 'archive', '--format=tar', `--output=${archive}`, tree]);
    await run('tar', ['-x', '-f', archive, '-C', tmp]);
    await rm(archive);
  } catch (err) {
    await cleanup();
    const detail = (err as { stderr?: string }).stderr?.trim().split('\n')[0] ?? (err as Error).message;
    throw new RevisionError(`${ref}: cannot read the source of truth at that revision: ${detail}`);
  }
  return { root: tmp, cleanup };
}

/** The full SHA of a revision of the repository holding `dir`. */
export async function resolveRevision(dir: string, ref: string): Promise<string> {
  try {
    return (
      await run('git', ['-C', dir, 'rev-parse', '--verify', '--quiet', `${ref}^{commit}`])
    ).stdout.trim();
  } catch {
    throw new RevisionError(`${ref}: not a git revision of the repository holding ${dir}`);
  }
}
