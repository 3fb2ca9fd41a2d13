import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export class RevisionError extends Error {
  override name = 'RevisionError';
}

/** Whether the repository holding `dir` has the commit now (no fetch). */
export const hasCommit = (dir: string, sha: string) =>
  run('git', ['-C', dir, 'cat-file', '-e', `${sha}^{commit}`]).then(
    () => true,
    () => false,
  );

/**
 * Makes sure the repository holding `dir` has the commit: a webhook may arrive before the clone has
 * it. Fetches every remote (then the SHA itself, for a commit no branch reaches); false when it is
 * still missing, for the caller to retry later.
 */
export async function ensureCommit(dir: string, sha: string): Promise<boolean> {
  if (await hasCommit(dir, sha)) return true;
  await run('git', ['-C', dir, 'rev-parse', '--git-dir']).catch(() => {
    throw new RevisionError(`${dir} is not in a git repository`);
  });
  const remotes = (await run('git', ['-C', dir, 'remote']).catch(() => ({ stdout: '' }))).stdout
    .split('\n')
    .filter(Boolean);
  for (const remote of remotes) {
    await run('git', ['-C', dir, 'fetch', '--quiet', remote]).catch(() => undefined);
    if (await hasCommit(dir, sha)) return true;
    if (/^[0-9a-f]{40,64}$/.test(sha))
      await run('git', ['-C', dir, 'fetch', '--quiet', remote, sha]).catch(() => undefined);
    if (await hasCommit(dir, sha)) return true;
  }
  return false;
}

const isAncestor = async (dir: string, ancestor: string, of: string): Promise<boolean | undefined> => {
  try {
    await run('git', ['-C', dir, 'merge-base', '--is-ancestor', ancestor, of]);
    return true;
  } catch (err) {
    // Exit 1 is "no"; anything else (a commit this repository does not have) is "cannot tell".
    return (err as { code?: number }).code === 1 ? false : undefined;
  }
};

/**
 * Why `commit` must not replace `applied` without an operator's `--force`, or undefined when it
 * descends from it: an ancestor would roll the fleet back, an unrelated commit is a rewritten history.
 */
export async function refusedOrder(
  dir: string,
  applied: string,
  commit: string,
): Promise<string | undefined> {
  if (applied === commit || (await isAncestor(dir, applied, commit))) return undefined;
  const force = `an operator applies it with \`vaquero apply ${commit} --force\``;
  const [c, a] = [commit.slice(0, 7), applied.slice(0, 7)];
  if (await isAncestor(dir, commit, applied))
    return `${c} is an ancestor of the applied commit ${a}: applying it would roll the fleet back (${force})`;
  return `${c} is not a descendant of the applied commit ${a} (history rewritten, or ${a} is unknown to this repository): ${force}`;
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
