import { describeExit, runProcess } from './process';
import type { CommandJob, JobRunner, JobTarget } from './types';

/** Where commands are looked up when the target's env has no PATH; the agent's own PATH is not passed on. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * The whole environment of a command job: the host context and the target's env, never the agent's
 * own environment, which holds the secrets that `{ env: VAR }` references point at.
 */
export function commandEnv(target: JobTarget): Record<string, string> {
  return {
    PATH: DEFAULT_PATH,
    VAQUERO_HOST: target.host,
    VAQUERO_SITE: target.site,
    VAQUERO_IPV4: target.ipv4,
    VAQUERO_MAC: target.mac,
    ...target.env,
  };
}

export const runCommandJob: JobRunner<CommandJob> = async (job, target, _deps, signal) => {
  const outcome = await runProcess(job.command, job.args, { env: commandEnv(target), signal });
  if (outcome.code === 0 && !outcome.spawnError) return { ok: true, output: outcome.output };
  return {
    ok: false,
    output: outcome.output,
    error: describeExit(job.command, outcome),
    // A missing or non-executable program stays so on the next try.
    ...(outcome.spawnError ? { retryable: false } : {}),
  };
};
