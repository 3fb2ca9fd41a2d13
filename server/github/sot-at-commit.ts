// The SoT exactly as a pull request's head commit has it: GitHub's tarball of the commit for
// `github` sources (the local clone may not have a fork's commits), `git archive` for `git` ones.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Octokit } from 'octokit';
import { checkoutRevision } from '../../sot/git-checkout';
import { sourceDir, type HookedSource } from '../config';

const run = promisify(execFile);

export interface SotAtCommit {
  root: string;
  cleanup(): Promise<void>;
}

async function fromTarball(
  octokit: Octokit,
  repo: string,
  sha: string,
  sotPath: string,
): Promise<SotAtCommit> {
  const [owner = '', name = ''] = repo.split('/');
  const { data } = await octokit.rest.repos.downloadTarballArchive({ owner, repo: name, ref: sha });
  const tmp = await mkdtemp(path.join(tmpdir(), 'vaquero-pr-'));
  const cleanup = () => rm(tmp, { recursive: true, force: true });
  try {
    const archive = path.join(tmp, '.commit.tar.gz');
    await writeFile(archive, Buffer.from(data as ArrayBuffer));
    // GitHub wraps the tree in one <owner>-<repo>-<sha7>/ directory.
    const tree = path.join(tmp, 'tree');
    await run('mkdir', [tree]);
    await run('tar', ['-x', '-z', '-f', archive, '-C', tree, '--strip-components=1', '--no-same-owner']);
    const root = path.resolve(tree, sotPath);
    if (!root.startsWith(tree) || !(await stat(root).catch(() => undefined))?.isDirectory())
      throw new Error(`${sotPath} is not a directory at ${sha}`);
    return { root, cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

export function sotAtCommit(octokit: Octokit, source: HookedSource, repo: string, sha: string) {
  if (source.kind === 'github') return fromTarball(octokit, repo, sha, source.path);
  return checkoutRevision(sourceDir(source), sha);
}
