// The synthetic site every protocol benchmark serves: N hosts with one interface each on 10.213.0.0/16,
// written as a source of truth and validated into a model, so our servers run on the same code path as
// in production (leasesFromModel, renderArmed). The peers get the same MAC -> address reservations.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { validateSot } from '../../../sot/validate';
import type { ArmEntry } from '../../../schemas/agent';
import type { Model } from '../../../schemas/model';
import { SERVER_IP } from './bench-net';

export const SITE = 'bench';
export const COMMIT = 'bench';
/** The site's one agent, whose reservations and URLs the servers use. */
export const AGENT = 'bench-agent';
export const KERNEL_PATH = 'sim/vmlinuz';

export interface BenchHost {
  name: string;
  mac: string;
  ipv4: string;
}

const hex = (n: number) => n.toString(16).padStart(2, '0');

/** Host n (1-based): MAC 52:54:02:00:xx:yy, address 10.213.(1 + n / 250).(n % 250 + 1). */
export function benchHosts(count: number): BenchHost[] {
  return Array.from({ length: count }, (_, i) => {
    const n = i + 1;
    return {
      name: `n${String(n).padStart(5, '0')}`,
      mac: `52:54:02:00:${hex((n >> 8) & 0xff)}:${hex(n & 0xff)}`,
      ipv4: `10.213.${1 + Math.floor(i / 250)}.${(i % 250) + 1}`,
    };
  });
}

export const INITRD_PATH = 'sim/initrd.img';

/** `initrd`: the OS also loads INITRD_PATH (the rack benchmark's full boot sequence). */
export async function writeBenchSot(
  dir: string,
  hosts: BenchHost[],
  opts: { initrd?: boolean } = {},
): Promise<void> {
  const write = async (rel: string, text: string) => {
    await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await writeFile(path.join(dir, rel), text);
  };
  await write(
    `sites/${SITE}/site.yaml`,
    `id: ${SITE}\nname: Benchmark\nagents: [{ name: ${AGENT}, asset_url: "http://${SERVER_IP}:8080" }]\n` +
      `subnets: [{ id: bench-prov, cidr: 10.213.0.0/16, gateway: ${SERVER_IP} }]\npolicy: { canary_size: 0, max_fail: 10 }\n`,
  );
  const initrds = opts.initrd ? `initrds: [${INITRD_PATH}]\n` : '';
  await write('os/sim.yaml', `id: sim-linux\nkernel: ${KERNEL_PATH}\n${initrds}cmdline: console=ttyS0\n`);
  await write('boot/sim.yaml', 'id: sim-node\nos: sim-linux\n');
  await write(
    'workflows/nodes.yaml',
    'id: nodes\nboots: [sim-node]\nrollout: { max_concurrent: 10, max_fail: 10 }\n',
  );
  const docs = hosts.map(
    (h) =>
      `name: ${h.name}\ngroup: nodes\ninterfaces: [{ mac: "${h.mac}", subnet: bench-prov, ipv4: ${h.ipv4} }]\n`,
  );
  await write(`sites/${SITE}/hosts/nodes.yaml`, docs.join('---\n'));
}

export async function loadBenchModel(dir: string): Promise<Model> {
  const result = await validateSot(dir);
  if (!result.model) {
    throw new Error(`synthetic SoT is invalid: ${JSON.stringify(result.diagnostics).slice(0, 2000)}`);
  }
  return result.model;
}

/** Every host armed at stage 1 of the bench commit, as the agent's netboot table would hold it. */
export function armAll(hosts: BenchHost[]): Map<string, ArmEntry> {
  return new Map(
    hosts.map((h) => [
      h.mac,
      {
        mac: h.mac,
        site: SITE,
        host: h.name,
        commit: COMMIT,
        stage: 1,
        workflowId: `bench-${h.name}`,
        armedAt: '2026-01-01T00:00:00Z',
        token: `bench-token-of-${h.name}`.padEnd(32, '-'),
      },
    ]),
  );
}
