import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { durationMs } from '../../schemas/common';
import { describeExit, runProcess } from './process';
import { resolveJobSecret } from './secrets';
import type { JobRunner, SshJob } from './types';

// ssh exits with 255 for its own errors (unreachable, host key, authentication), else with the
// remote command's status.
const SSH_ERROR_STATUS = 255;

export const runSshJob: JobRunner<SshJob> = async (job, target, deps, signal) => {
  const key = await resolveJobSecret(deps, job.private_key, 'private_key');
  // The key never touches a command line: a 0700 directory of our own with a 0600 file in it.
  const dir = await mkdtemp(path.join(tmpdir(), 'vaquero-ssh-'));
  try {
    const keyFile = path.join(dir, 'id');
    await writeFile(keyFile, key.endsWith('\n') ? key : `${key}\n`, { mode: 0o600 });
    const args = sshArgs(job, target.ipv4, keyFile, deps.knownHostsFile ?? path.join(dir, 'known_hosts'));
    const outcome = await runProcess('ssh', args, { signal });
    if (outcome.code === 0) return { ok: true, output: outcome.output };
    const where = `ssh ${job.username}@${target.ipv4}:${job.port}`;
    const error =
      outcome.code === SSH_ERROR_STATUS
        ? `${where}: connection or authentication failed (ssh status 255)`
        : describeExit(`${where}: ${job.command}`, outcome);
    return { ok: false, output: outcome.output, error, ...(outcome.spawnError ? { retryable: false } : {}) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
};

export function sshArgs(job: SshJob, host: string, keyFile: string, knownHostsFile: string): string[] {
  // Connecting may take part of the attempt's time, never all of it: an unreachable host then fails
  // with ssh's own message rather than a bare timeout.
  const connectTimeout = Math.max(1, Math.min(30, Math.floor(durationMs(job.timeout) / 2000)));
  const options: Record<string, string> = {
    BatchMode: 'yes',
    StrictHostKeyChecking: 'accept-new',
    UserKnownHostsFile: knownHostsFile,
    GlobalKnownHostsFile: '/dev/null',
    ConnectTimeout: String(connectTimeout),
    // Only the job's key: not the agent's ssh-agent, not ~/.ssh/id_*.
    IdentitiesOnly: 'yes',
    IdentityAgent: 'none',
    ServerAliveInterval: '15',
    ServerAliveCountMax: '3',
    LogLevel: 'ERROR',
  };
  return [
    '-n',
    '-T',
    '-i',
    keyFile,
    ...Object.entries(options).flatMap(([k, v]) => ['-o', `${k}=${v}`]),
    '-p',
    String(job.port),
    '-l',
    job.username,
    '--',
    host,
    job.command,
  ];
}
