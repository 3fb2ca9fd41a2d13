// A synthetic source of truth of sim hosts in one site and one host group, for the rollout benchmark
// and the tests that count what a rollout costs per host.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface SimSot {
  site: string;
  hosts: number;
  bootS: number;
  maxConcurrent: number;
  /** Second octet of the site's 10.x.0.0/16 subnet; the MACs' fourth octet keeps sites apart. */
  net: number;
}

export async function writeSimSot(dir: string, sot: SimSot): Promise<void> {
  const { site, hosts, bootS, maxConcurrent, net } = sot;
  const write = async (rel: string, text: string) => {
    await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await writeFile(path.join(dir, rel), text);
  };
  await write(
    `sites/${site}/site.yaml`,
    `id: ${site}\nname: ${site}\nagents: [{ name: ${site}-agent, asset_url: "http://127.0.0.1:18080" }]\n` +
      `subnets: [{ id: ${site}-prov, cidr: 10.${net}.0.0/16 }]\npolicy: { canary_size: 0, max_fail: 10 }\n`,
  );
  await write('os/sim.yaml', 'id: sim-linux\nkernel: sim/vmlinuz\ncmdline: console=ttyS0\n');
  await write('boot/sim.yaml', 'id: sim-node\nos: sim-linux\n');
  await write(
    'workflows/nodes.yaml',
    `id: nodes\nboots: [sim-node]\nrollout: { max_concurrent: ${maxConcurrent}, max_fail: 10 }\n`,
  );
  const hex = (n: number) => (n & 0xff).toString(16).padStart(2, '0');
  const docs = Array.from({ length: hosts }, (_, i) => {
    const n = i + 1;
    const mac = `52:54:01:${hex(net)}:${hex(n >> 8)}:${hex(n)}`;
    return `name: n${String(n).padStart(4, '0')}\ngroup: nodes\ninterfaces: [{ mac: "${mac}", subnet: ${site}-prov, ipv4: 10.${net}.${n >> 8}.${n & 0xff} }]\nbmc: { type: sim, boot_delay: ${bootS}s }\n`;
  });
  await write(`sites/${site}/hosts/nodes.yaml`, docs.join('---\n'));
}
