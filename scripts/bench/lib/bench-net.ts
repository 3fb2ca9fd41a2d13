// The protocol benchmarks' network: a namespace pair (cli/lab/netns.ts) with the server side (`a`,
// 10.213.0.1) and the client side (`b`, 10.213.0.2). Deletion runs in `close()`, and again from an
// `exit` hook (also reached on SIGINT, SIGTERM and uncaught errors), so a crashed benchmark leaves no
// namespace behind.
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createNetnsPair, type Namespaces } from '../../../cli/lab/netns';

export const SERVER_IP = '10.213.0.1';
export const CLIENT_IP = '10.213.0.2';
export const PREFIX_LEN = 16;

export interface BenchNet extends Namespaces {
  server: string;
  client: string;
  ifServer: string;
  ifClient: string;
}

const live = new Set<Namespaces>();
const tempDirs = new Set<string>();
let hooked = false;

/** Removes `dir` from the exit hook too: an interrupted benchmark leaves no temporary files either. */
export function removeOnExit(dir: string): void {
  hookExit();
  tempDirs.add(dir);
}

function cleanupSync(): void {
  for (const net of live) net.closeSync();
  live.clear();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.once('exit', cleanupSync);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      cleanupSync();
      process.exit(130);
    });
  }
}

/**
 * Creates the pair with `h3-<random>-a` / `h3-<random>-b` names (`VAQUERO_BENCH_TAG` instead of h3,
 * up to 5 characters, on a machine shared with other runs); always call `close()` in a finally.
 */
export async function createBenchNet(tag = process.env.VAQUERO_BENCH_TAG || 'h3'): Promise<BenchNet> {
  hookExit();
  const pair = await createNetnsPair({
    tag,
    a: [`${SERVER_IP}/${PREFIX_LEN}`],
    b: [`${CLIENT_IP}/${PREFIX_LEN}`],
  });
  live.add(pair);
  return {
    ...pair,
    server: pair.a,
    client: pair.b,
    ifServer: pair.ifA,
    ifClient: pair.ifB,
    close: async () => {
      await pair.close();
      live.delete(pair);
    },
  };
}

/** Resolves when the child prints `marker` on stdout (or stderr), rejects if it exits first or on timeout. */
export function waitForLine(child: ChildProcess, marker: RegExp, timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (d: Buffer) => {
      seen += d.toString();
      const line = seen.split('\n').find((l) => marker.test(l));
      if (line !== undefined) finish(() => resolve(line));
    };
    const onExit = (code: number | null) =>
      finish(() => reject(new Error(`exited (${code}) before ready:\n${seen.slice(-2000)}`)));
    const timer = setTimeout(
      () => finish(() => reject(new Error(`not ready after ${timeoutMs} ms:\n${seen.slice(-2000)}`))),
      timeoutMs,
    );
    const finish = (then: () => void) => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
      then();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
  });
}

/** Keeps reading a child's output so a full pipe never blocks it; returns the last bytes for errors. */
export function drain(child: ChildProcess): () => string {
  let tail = '';
  const keep = (d: Buffer) => {
    tail = (tail + d.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return () => tail;
}
