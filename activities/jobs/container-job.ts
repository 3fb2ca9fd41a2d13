import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import path from 'node:path';
import { commandEnv } from './command-job';
import { describeExit, runProcess, type ProcessOutcome } from './process';
import type { AttemptResult, ContainerJob, JobRunner, JobTarget } from './types';

/** Looked up in this order on the PATH that command jobs get. */
export const CONTAINER_RUNTIMES = ['docker', 'podman'] as const;

export const NO_RUNTIME_ERROR = 'no container runtime (docker or podman) on this agent';

// What the CLIs print when they exist but their engine does not answer.
const ENGINE_DOWN = [/Cannot connect to the Docker daemon[^\n]*/, /Cannot connect to Podman[^\n]*/];

/**
 * Runs the job with the first runtime on the PATH; when that one's engine does not answer (a docker
 * CLI without its daemon) and another runtime is installed, with the next: what is said of each
 * engine that did not answer is kept in the output.
 */
export const runContainerJob: JobRunner<ContainerJob> = async (job, target, _deps, signal) => {
  const runtimes = await findRuntimes(commandEnv(target).PATH ?? '');
  if (runtimes.length === 0) return { ok: false, output: '', error: NO_RUNTIME_ERROR, retryable: false };
  const skipped: string[] = [];
  for (const [i, runtime] of runtimes.entries()) {
    const result = await runIn(runtime, job, target, signal);
    const down = result.ok ? undefined : engineDown(result.output);
    if (!down || i === runtimes.length - 1 || signal.aborted)
      return skipped.length === 0 ? result : { ...result, output: `${skipped.join('')}${result.output}` };
    skipped.push(`${path.basename(runtime)}: ${down}; trying ${path.basename(runtimes[i + 1] ?? '')}\n`);
  }
  return { ok: false, output: '', error: NO_RUNTIME_ERROR, retryable: false };
};

async function runIn(
  runtime: string,
  job: ContainerJob,
  target: JobTarget,
  signal: AbortSignal,
): Promise<AttemptResult> {
  // A named container can be removed when the attempt is stopped: killing the CLI leaves it running.
  const name = `vaquero-${job.name}-${randomBytes(4).toString('hex')}`;
  const onAbort = () => removeContainer(runtime, name);
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    // The runtime's CLI inherits the agent's environment (DOCKER_HOST, XDG_RUNTIME_DIR, and
    // CONTAINERS_CONF for podman).
    const outcome = await runProcess(runtime, containerArgs(job, target, name), { signal });
    return judge(runtime, job, outcome);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

export function containerArgs(job: ContainerJob, target: JobTarget, name: string): string[] {
  const env: Record<string, string> = {
    VAQUERO_HOST: target.host,
    VAQUERO_SITE: target.site,
    VAQUERO_IPV4: target.ipv4,
    VAQUERO_MAC: target.mac,
    ...job.env,
  };
  const envArgs = Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
  // `--` keeps a rendered image name from being read as an option.
  const network = job.network ? ['--network', job.network] : [];
  return ['run', '--rm', '--name', name, ...network, ...envArgs, '--', job.image, ...job.args];
}

function judge(runtime: string, job: ContainerJob, outcome: ProcessOutcome): AttemptResult {
  const { output } = outcome;
  if (outcome.code === 0) return { ok: true, output };
  const down = engineDown(output);
  if (down)
    return {
      ok: false,
      output,
      error: `${path.basename(runtime)} is installed but its engine does not answer: ${down}`,
      retryable: false,
    };
  return { ok: false, output, error: describeExit(`container ${job.image}`, outcome) };
}

function engineDown(output: string): string | undefined {
  return ENGINE_DOWN.map((re) => re.exec(output)?.[0])
    .find(Boolean)
    ?.trim();
}

export async function findRuntime(searchPath: string): Promise<string | undefined> {
  return (await findRuntimes(searchPath))[0];
}

/** Every runtime on the PATH, docker before podman, each at its first directory. */
export async function findRuntimes(searchPath: string): Promise<string[]> {
  const found: string[] = [];
  for (const runtime of CONTAINER_RUNTIMES) {
    for (const dir of searchPath.split(':').filter(Boolean)) {
      const candidate = path.join(dir, runtime);
      if (await isExecutableFile(candidate)) {
        found.push(candidate);
        break;
      }
    }
  }
  return found;
}

async function isExecutableFile(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}

function removeContainer(runtime: string, name: string): void {
  const child = spawn(runtime, ['rm', '-f', name], { stdio: 'ignore', detached: true });
  child.on('error', () => {});
  child.unref();
}
