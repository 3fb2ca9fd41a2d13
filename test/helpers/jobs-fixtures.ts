// Helpers for tests of job runners: jobs parsed through the real schemas (so defaults apply),
// a loopback target, temporary directories and loopback servers closed when the test ends.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { createSecretResolver } from '../../activities/jobs/secrets';
import type {
  CommandJob,
  ContainerJob,
  HttpJob,
  JobRunnerDeps,
  JobTarget,
  SshJob,
  TcpJob,
} from '../../activities/jobs/types';
import {
  CommandJobSchema,
  ContainerJobSchema,
  HttpJobSchema,
  SshJobSchema,
  TcpJobSchema,
} from '../../schemas/jobs';

type Input<J> = Omit<Partial<J>, 'type'>;

export const httpJob = (input: Input<HttpJob>): HttpJob =>
  HttpJobSchema.parse({ name: 'http-check', url: 'http://127.0.0.1:1/', ...input, type: 'http' });
export const tcpJob = (input: Input<TcpJob>): TcpJob =>
  TcpJobSchema.parse({ name: 'tcp-check', port: 1, ...input, type: 'tcp' });
export const commandJob = (input: Input<CommandJob>): CommandJob =>
  CommandJobSchema.parse({ name: 'command-check', command: 'true', ...input, type: 'command' });
export const sshJob = (input: Input<SshJob>): SshJob =>
  SshJobSchema.parse({
    name: 'ssh-check',
    command: 'true',
    private_key: { env: 'SSH_KEY' },
    ...input,
    type: 'ssh',
  });
export const containerJob = (input: Input<ContainerJob>): ContainerJob =>
  ContainerJobSchema.parse({ name: 'container-check', image: 'busybox', ...input, type: 'container' });

export function loopbackTarget(env: Record<string, string> = {}): JobTarget {
  return { host: 'node-1', site: 'lab', ipv4: '127.0.0.1', mac: '52:54:00:12:34:56', env };
}

export function jobDeps(
  secrets: Record<string, string> = {},
  extra: Partial<JobRunnerDeps> = {},
): JobRunnerDeps {
  return { resolveSecret: createSecretResolver(secrets), ...extra };
}

export async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'vaquero-jobs-test-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A node:http server on 127.0.0.1 and its base URL; closed (with open connections) after the test. */
export async function httpServer(t: TestContext, handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

/** A port on 127.0.0.1 that was free a moment ago (nothing listens on it when this returns). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** True when no process has this PID any more, or only its zombie waits for a parent to reap it. */
export function processGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The state follows the parenthesised command name, which may itself contain spaces.
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

/** Waits up to `ms` for a condition that becomes true asynchronously (a killed process being reaped). */
export async function eventually(check: () => boolean, ms = 3000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return check();
}
