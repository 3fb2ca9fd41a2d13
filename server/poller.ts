// Local sources (config kind `local`): a directory on this machine, polled because no webhook
// reaches it. A new commit on the branch (git repository) or new content (plain directory) starts
// the same applyCommitWorkflow a push does. Only the leader polls.
import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Client } from '@temporalio/client';
import { startApply, type ApplyStarted } from './apply';
import { sourceDir, type LocalSource } from './config';
import type { Log } from './http/log';
import type { ServerMetrics } from './http/metrics';
import type { Leadership } from './ha/leader';
import type { ModelStore } from '../activities/store/model-store';

const run = promisify(execFile);
const git = async (args: string[]) => (await run('git', args)).stdout.trim();
// Snapshots are the server's own commits, with a fixed identity whatever the machine's git config.
const snapshotGit = (args: string[]) =>
  git([
    '-c',
    'user.name=vaquero',
    '-c',
    'user.email=vaquero@localhost',
    '-c',
    'commit.gpgsign=false',
    ...args,
  ]);

export interface PollerDeps {
  temporal: Client;
  /** Plain directories are snapshotted into git repositories under `<storeDir>/snapshots/`. */
  storeDir: string;
  /** The applied history, so a poll after a restart does not apply an applied commit again. */
  store?: ModelStore;
  log: Log;
  metrics?: ServerMetrics;
}

/** What one poll of a source found: the commit to apply, and where the workflow reads it. */
interface Revision {
  commit: string;
  source: string;
}

async function isGitRepository(dir: string): Promise<boolean> {
  return git(['-C', dir, 'rev-parse', '--show-toplevel']).then(
    () => true,
    () => false,
  );
}

/** The head of the branch; the workflow reads the SoT from the repository at that commit. */
async function branchHead(source: LocalSource): Promise<Revision> {
  const dir = path.resolve(source.dir);
  const commit = await git([
    '-C',
    dir,
    'rev-parse',
    '--verify',
    '--quiet',
    `refs/heads/${source.branch}^{commit}`,
  ]).catch(() => {
    throw new Error(`${dir} has no branch ${source.branch}`);
  });
  return { commit, source: sourceDir(source) };
}

/**
 * The directory's content as a commit of a private repository (its work tree is the directory, so
 * nothing is copied or written there): a change of any file is a new commit, and prepareCommit
 * reads that exact content later with `git archive`, whatever happens to the directory meanwhile.
 */
async function snapshot(source: LocalSource, storeDir: string): Promise<Revision> {
  const repo = path.resolve(storeDir, 'snapshots', source.name);
  await mkdir(repo, { recursive: true });
  if (!(await git(['-C', repo, 'rev-parse', '--git-dir']).catch(() => '')).startsWith('.git'))
    await snapshotGit(['-C', repo, 'init', '--quiet']);
  const tree = sourceDir(source);
  const at = ['-C', repo, `--work-tree=${tree}`];
  await snapshotGit([...at, 'add', '--all']);
  const head = await git(['-C', repo, 'rev-parse', '--verify', '--quiet', 'HEAD']).catch(() => '');
  const changed =
    !head ||
    (await snapshotGit([...at, 'diff', '--cached', '--quiet', 'HEAD']).then(
      () => false,
      () => true,
    ));
  if (changed) await snapshotGit([...at, 'commit', '--quiet', '--allow-empty', '-m', `snapshot of ${tree}`]);
  return { commit: await git(['-C', repo, 'rev-parse', 'HEAD']), source: repo };
}

export interface Poller {
  /** One poll now: the apply it started, or undefined when nothing changed. */
  poll(): Promise<ApplyStarted | undefined>;
  stop(): Promise<void>;
}

/** Polls one local source every `poll_seconds` until stopped. */
export function startPoller(source: LocalSource, deps: PollerDeps): Poller {
  let last: string | undefined;
  let lastError: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let tracking: Promise<'commits' | 'files'> | undefined;
  const mode = () =>
    (tracking ??=
      source.track !== 'auto'
        ? Promise.resolve(source.track)
        : isGitRepository(source.dir).then((repo) => (repo ? 'commits' : 'files')));

  const pollOnce = async (): Promise<ApplyStarted | undefined> => {
    const revision =
      (await mode()) === 'commits' ? await branchHead(source) : await snapshot(source, deps.storeDir);
    if (revision.commit === last) return undefined;
    const started = await startApply(deps, revision, 'poll');
    last = revision.commit;
    deps.log.info(
      { source: source.name, ...started },
      started.status === 'started'
        ? 'local source changed: apply started'
        : 'local source at an applied commit',
    );
    return started;
  };

  // One poll at a time: two snapshots at once would contend for the repository's index.
  let queue: Promise<unknown> = Promise.resolve();
  const poll = () => {
    const next = queue.then(pollOnce);
    queue = next.catch(() => undefined);
    return next;
  };

  let running: Promise<unknown> = Promise.resolve();
  const tick = () => {
    running = poll()
      .then(() => (lastError = undefined))
      .catch((err: unknown) => {
        // Logged once per distinct problem: a missing directory would otherwise log every few seconds.
        const message = (err as Error).message;
        if (message !== lastError)
          deps.log.warn({ source: source.name, error: message }, 'local source not polled');
        lastError = message;
      })
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, source.poll_seconds * 1000);
      });
  };
  tick();
  return {
    poll,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}

/** Runs the pollers of `sources` while this server leads, and stops them when it stops leading. */
export function pollWhileLeader(leadership: Leadership, sources: readonly LocalSource[], deps: PollerDeps) {
  let pollers: Poller[] = [];
  const stopAll = async () => {
    const stopping = pollers;
    pollers = [];
    await Promise.all(stopping.map((p) => p.stop()));
  };
  const follow = (leader: boolean) => {
    if (leader && pollers.length === 0) pollers = sources.map((s) => startPoller(s, deps));
    else if (!leader) void stopAll();
  };
  const unsubscribe = leadership.onChange(follow);
  follow(leadership.isLeader());
  return {
    async close() {
      unsubscribe();
      await stopAll();
    },
  };
}
