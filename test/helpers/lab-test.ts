// What the lab's end-to-end tests share: a free port, a CLI Io that keeps its lines, git in a SoT clone,
// polling, and the boot steps a host's workflow was signalled.
import { execFile } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';
import type { Client } from '@temporalio/client';
import type { Io } from '../../cli/io';

const run = promisify(execFile);

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export const io = (lines: string[]): Io => ({
  out: (text) => void lines.push(text),
  err: (text) => void lines.push(text),
  cwd: () => process.cwd(),
});

export async function git(dir: string, args: string[]): Promise<string> {
  const { stdout } = await run('git', [
    '-C',
    dir,
    '-c',
    'user.name=t',
    '-c',
    'user.email=t@t.invalid',
    ...args,
  ]);
  return stdout.trim();
}

/** Edits a file of the lab's SoT and commits it; returns the commit's short SHA (the rollout's id). */

/** Polls `probe` every second until it gives a value (a failing probe counts as none), or throws after `deadlineMs`. */
export async function labUntil<T>(
  what: string,
  deadlineMs: number,
  probe: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${deadlineMs / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

/** Boot-event kinds signalled to a host's workflow (one by one or in batches), in order. */
export async function bootSteps(client: Client, id: string): Promise<string[]> {
  const history = await client.workflow.getHandle(id).fetchHistory();
  const kinds: string[] = [];
  for (const event of history.events ?? []) {
    const signal = event.workflowExecutionSignaledEventAttributes;
    const data = signal?.input?.payloads?.[0]?.data;
    if (!data) continue;
    const body = JSON.parse(Buffer.from(data).toString()) as { kind?: string; events?: { kind: string }[] };
    if (signal.signalName === 'boot-event' && body.kind) kinds.push(body.kind);
    if (signal.signalName === 'boot-events') kinds.push(...(body.events ?? []).map((e) => e.kind));
  }
  return kinds;
}
