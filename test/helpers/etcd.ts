// A real etcd (Debian's /usr/bin/etcd) per test file: free loopback ports, a temporary data dir,
// and the faults an HA test needs (kill -9, restart on the same ports and data).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

export const ETCD_BIN = process.env.ETCD_BIN ?? '/usr/bin/etcd';

export interface TestEtcd {
  /** The client URL, http://127.0.0.1:<port>. */
  endpoint: string;
  dataDir: string;
  /** SIGKILL: no graceful shutdown, as a crashed node. */
  kill(): Promise<void>;
  /** Starts again on the same ports and data dir, and waits until it is healthy. */
  restart(): Promise<void>;
  /** Kills it and deletes its data dir (also done by t.after). */
  cleanup(): Promise<void>;
}

/** A loopback port nobody listens on now (the kernel's pick, released at once). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

async function waitHealthy(endpoint: string, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`etcd exited with ${child.exitCode}:\n${log()}`);
    try {
      const res = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1_000) });
      const body = (await res.json()) as { health?: string };
      if (body.health === 'true') return;
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  throw new Error(`etcd at ${endpoint} did not become healthy in 15 s:\n${log()}`);
}

/**
 * Starts etcd and registers its cleanup in t.after (without t, call cleanup() yourself). Short
 * heartbeats keep elections in tests quick.
 */
export async function startEtcd(t?: Pick<TestContext, 'after'>): Promise<TestEtcd> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'vaquero-etcd-'));
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const endpoint = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const args = [
    '--name=test',
    `--data-dir=${path.join(dataDir, 'data')}`,
    `--listen-client-urls=${endpoint}`,
    `--advertise-client-urls=${endpoint}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=test=${peer}`,
    '--heartbeat-interval=50',
    '--election-timeout=500',
    '--log-level=error',
  ];
  let child: ChildProcess | undefined;
  let output = '';
  const start = async () => {
    output = '';
    const c = spawn(ETCD_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4_000));
    c.stdout?.on('data', keep);
    c.stderr?.on('data', keep);
    await waitHealthy(endpoint, c, () => output);
  };
  const kill = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((resolve) => c.once('exit', resolve));
    c.kill('SIGKILL');
    await exited;
  };
  const cleanup = async () => {
    await kill();
    await rm(dataDir, { recursive: true, force: true });
  };
  t?.after(cleanup);
  await start();
  return {
    endpoint,
    dataDir,
    kill,
    restart: async () => {
      await kill();
      await start();
    },
    cleanup,
  };
}

export interface FaultProxy {
  /** The proxy's URL, to give a client instead of etcd's. */
  endpoint: string;
  /** Drops every connection and refuses new ones: a partition between this client and etcd. */
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

/** A TCP proxy in front of etcd that can partition the clients using it (etcd3's own test approach). */
export async function faultProxy(target: string, t?: Pick<TestContext, 'after'>): Promise<FaultProxy> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  let open = true;
  const server = createServer((client) => {
    if (!open) return client.destroy();
    const upstream = connect(Number(port), hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('proxy has no address');
  const close = () => {
    open = false;
    for (const s of sockets) s.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  };
  t?.after(close);
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    cut: () => {
      open = false;
      for (const s of sockets) s.destroy();
    },
    restore: () => (open = true),
    close,
  };
}
