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

/**
 * What a failed lab run leaves to read, on the test's output (CI keeps nothing else): each agent's
 * last log lines, each machine's power log and serial console tail, and its latest host workflows'
 * status and boot steps. The state directory minus disk images and boot files is copied to
 * `$VAQUERO_LAB_FAILED_DIR` (default /tmp/vaquero-lab-failed/<prefix>) for a machine that keeps it.
 */
export async function labPostMortem(
  state: string,
  prefix: string,
  machines: readonly string[],
  client?: Client,
): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  const path = await import('node:path');
  const tail = async (file: string, lines: number): Promise<string> =>
    (await readFile(file, 'utf8').catch((err: Error) => `(${err.message})`))
      .split('\n')
      .slice(-lines)
      .join('\n');
  const out: string[] = [`lab post-mortem (${state})`];
  for (const log of ['agent', 'agent-b', 'standalone'])
    out.push(`--- run/${log}.log, last 60 lines`, await tail(path.join(state, 'run', `${log}.log`), 60));
  for (const name of machines) {
    const vm = path.join(state, 'vms', name);
    out.push(`--- ${name}: power.log`, await tail(path.join(vm, 'power.log'), 40));
    out.push(`--- ${name}: serial.log, last 25 lines`, await tail(path.join(vm, 'serial.log'), 25));
    if (!client) continue;
    try {
      const ids: string[] = [];
      for await (const info of client.workflow.list({ query: `WorkflowId STARTS_WITH "host/lab/${name}/"` }))
        ids.push(`${info.workflowId} ${info.status.name} ${info.startTime.toISOString()}`);
      for (const line of ids.sort((a, b) => a.split(' ')[2]!.localeCompare(b.split(' ')[2]!)).slice(-2)) {
        const id = line.split(' ')[0]!;
        out.push(`--- ${line}: steps ${(await bootSteps(client, id)).join(' ')}`);
      }
    } catch (err) {
      out.push(`--- ${name}: workflows not listed (${(err as Error).message})`);
    }
  }
  const keep = process.env.VAQUERO_LAB_FAILED_DIR ?? path.join('/tmp/vaquero-lab-failed', prefix);
  await run('mkdir', ['-p', keep]);
  await run('bash', [
    '-c',
    'chmod 700 "$2" && tar -C "$1" --exclude="*.img" --exclude="*.img.zst" --exclude=files --exclude=prometheus --exclude="*.sock" --exclude="*token*" --exclude="*.key" -cf - . | tar -C "$2" -xf -',
    'keep',
    state,
    keep,
  ]).then(
    () => out.push(`state kept in ${keep}`),
    (err: Error) => out.push(`state not kept: ${err.message}`),
  );
  return out.join('\n');
}
