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

export const runContainerJob: JobRunner<ContainerJob> = async (job, target, _deps, signal) => {
  const runtime = await findRuntime(commandEnv(target).PATH ?? '');
  if (!runtime) return { ok: false, output: '', error: NO_RUNTIME_ERROR, retryable: false };
  // A named container can be removed when the attempt is stopped: killing the CLI leaves it running.
  const name = `vaquero-${job.name}-${randomBytes(4).toString('hex')}`;
  const onAbort = () => removeContainer(runtime, name);
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    // The runtime's CLI inherits the agent's environment (DOCKER_HOST, XDG_RUNTIME_DIR for podman).
    const outcome = await runProcess(runtime, containerArgs(job, target, name), { signal });
    return judge(runtime, job, outcome);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
};

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
  return ['run', '--rm', '--name', name, ...envArgs, '--', job.image, ...job.args];
}

function judge(runtime: string, job: ContainerJob, outcome: ProcessOutcome): AttemptResult {
  const { output } = outcome;
  if (outcome.code === 0) return { ok: true, output };
  const engineDown = ENGINE_DOWN.map((re) => re.exec(output)?.[0]).find(Boolean);
  if (engineDown)
    return {
      ok: false,
      output,
      error: `${path.basename(runtime)} is installed but its engine does not answer: ${engineDown.trim()}`,
      retryable: false,
    };
  return { ok: false, output, error: describeExit(`container ${job.image}`, outcome) };
}

export async function findRuntime(searchPath: string): Promise<string | undefined> {
  for (const runtime of CONTAINER_RUNTIMES) {
    for (const dir of searchPath.split(':').filter(Boolean)) {
      const candidate = path.join(dir, runtime);
      if (await isExecutableFile(candidate)) return candidate;
    }
  }
  return undefined;
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
