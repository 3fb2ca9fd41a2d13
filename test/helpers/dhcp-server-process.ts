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
  const { mapBackend } = await import(${JSON.stringify(path.join(agentDir, 'leases.ts'))});
  const leases = new Map(JSON.parse(process.env.VQD_LEASES).map((l) => [l.mac, l]));
  await startDhcpServer({
    interface: process.env.VQD_IF,
    address: process.env.VQD_ADDRESS,
    backend: mapBackend(leases),
    events: { emit: (event) => console.log(JSON.stringify({ event })) },
    log: (log) => console.log(JSON.stringify({ log })),
  });
  console.log('READY');`;

export interface DhcpServerProcess {
  /** Every stdout line so far. */
  lines: string[];
}

export async function startDhcpServerIn(
  net: Pick<Namespaces, 'spawn'>,
  ns: string,
  opts: { address: string; interface: string; leases: HostLease[] },
): Promise<DhcpServerProcess> {
  const child = net.spawn(ns, process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CODE], {
    env: {
      ...process.env,
      VQD_LEASES: JSON.stringify(opts.leases),
      VQD_IF: opts.interface,
      VQD_ADDRESS: opts.address,
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
  return { lines };
}
