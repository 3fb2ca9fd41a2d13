// Our DHCP server (agent/dhcp/server.ts) in a process of its own inside a network namespace, serving
// given leases: the test process itself cannot bind port 67 there. Its log entries and boot events
// are collected as JSON lines ({"log": ...} / {"event": ...}).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HostLease } from '../../agent/dhcp/leases';
import type { Namespaces } from '../../cli/lab/netns';

const agentDir = fileURLToPath(new URL('../../agent/dhcp/', import.meta.url));

const CODE = `
  const { startDhcpServer } = await import(${JSON.stringify(path.join(agentDir, 'server.ts'))});
  const { mapBackend, relayFilter } = await import(${JSON.stringify(path.join(agentDir, 'leases.ts'))});
  const leases = new Map(JSON.parse(process.env.VQD_LEASES).map((l) => [l.mac, l]));
  const served = process.env.VQD_SERVED ? JSON.parse(process.env.VQD_SERVED) : undefined;
  const server = await startDhcpServer({
    interface: process.env.VQD_IF,
    ...(process.env.VQD_BIND_IF ? { interfaces: [process.env.VQD_IF] } : {}),
    address: process.env.VQD_ADDRESS,
    backend: mapBackend(leases, served && relayFilter(served)),
    events: { emit: (event) => console.log(JSON.stringify({ event })) },
    log: (log) => console.log(JSON.stringify({ log })),
  });
  process.on('SIGUSR2', () => console.log(JSON.stringify({ counters: server.counters })));
  console.log('READY');`;

export interface DhcpServerProcess {
  /** Every stdout line so far. */
  lines: string[];
  /** The server's counters (agent/dhcp/server.ts), asked for with SIGUSR2. */
  counters(): Promise<Record<string, number | undefined>>;
}

export interface DhcpServerProcessOptions {
  /** Server identifier. */
  address: string;
  interface: string;
  leases: HostLease[];
  /** Bind to `interface` (DhcpServerOptions.interfaces) instead of 0.0.0.0. */
  bindInterface?: boolean;
  /** The CIDRs whose relays it answers (DhcpServerOptions backend `servesRelay`); none: all. */
  servedCidrs?: string[];
}

export async function startDhcpServerIn(
  net: Pick<Namespaces, 'spawn'>,
  ns: string,
  opts: DhcpServerProcessOptions,
): Promise<DhcpServerProcess> {
  const child = net.spawn(ns, process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CODE], {
    env: {
      ...process.env,
      VQD_LEASES: JSON.stringify(opts.leases),
      VQD_IF: opts.interface,
      VQD_ADDRESS: opts.address,
      ...(opts.bindInterface ? { VQD_BIND_IF: '1' } : {}),
      ...(opts.servedCidrs ? { VQD_SERVED: JSON.stringify(opts.servedCidrs) } : {}),
    },
  });
  const lines: string[] = [];
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    let buffered = '';
    child.stdout?.on('data', (d: Buffer) => {
      buffered += d.toString();
      const parts = buffered.split('\n');
      buffered = parts.pop() ?? '';
      lines.push(...parts);
      if (parts.includes('READY')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`DHCP server exited (${code}): ${stderr}`)));
  });
  const counters = async () => {
    const seen = lines.length;
    // `ip netns exec` execs the command: the child is the node process itself.
    child.kill('SIGUSR2');
    for (let i = 0; i < 100; i++) {
      const line = lines.slice(seen).find((l) => l.startsWith('{"counters"'));
      if (line) return (JSON.parse(line) as { counters: Record<string, number> }).counters;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error(`no counters from the DHCP server: ${stderr}`);
  };
  return { lines, counters };
}
