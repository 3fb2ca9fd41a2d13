// What Vaquero costs on top of a bare network boot, on the lab's machines, in one run:
//   bare:    dnsmasq (DHCP + TFTP), busybox httpd with static files and radvd (as the agent runs it,
//            else iPXE waits ~13 s for IPv6 on every boot); the machines are powered on
//            in the rollout's waves (canary 1, then 2 at a time) and timed from power-on to checkpoint.
//   vaquero: `vaquero lab up`, then a commit to the SoT; timed from the commit to the rollout closing
//            (every machine power-cycled over IPMI, booted, checkpointed and validated).
//
//   sudo npx tsx scripts/bench/lab-overhead.ts
import { execFile, spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { validateSot } from '../../sot/validate';
import { radvdConfig } from '../../agent/ra';
import { labCommand } from '../../cli/lab/command';
import { chassis, killVm, machinesFromModel, prepareVm, type LabMachine } from '../../cli/lab/machines';
import { createLabNetwork, createTap, deleteLabNetwork, labNames } from '../../cli/lab/network';

const run = promisify(execFile);
const CACHE = path.join(process.env.VAQUERO_CACHE ?? '/var/cache/vaquero', 'lab');
const SOT = new URL('../../examples/lab', import.meta.url).pathname;
const quiet = {
  out: () => undefined,
  err: (t: string) => void process.stderr.write(t),
  cwd: () => process.cwd(),
};

function waves<T>(items: T[]): T[][] {
  const [canary, ...rest] = items;
  const out: T[][] = canary ? [[canary]] : [];
  for (let i = 0; i < rest.length; i += 2) out.push(rest.slice(i, i + 2));
  return out;
}

async function bare(machines: LabMachine[], dir: string): Promise<{ boots: number[]; wall: number }> {
  const names = labNames('vqlbare');
  await createLabNetwork(names, []);
  const www = path.join(dir, 'www');
  await mkdir(path.join(www, 'cp'), { recursive: true });
  for (const f of ['vmlinuz', 'initramfs']) await copyFile(path.join(CACHE, f), path.join(www, f));
  for (const m of machines) await writeFile(path.join(www, 'cp', m.mac.replace(/:/g, '-')), 'ok\n');
  await writeFile(
    path.join(www, 'boot.ipxe'),
    '#!ipxe\nkernel http://10.77.0.1:8080/vmlinuz initrd=initramfs console=ttyS0 quiet vaquero.checkpoint=http://10.77.0.1:8080/cp/${mac:hexhyp}\ninitrd --name initramfs http://10.77.0.1:8080/initramfs\nboot\n',
  );
  const ns = ['ip', 'netns', 'exec', names.agentNs];
  const dnsmasq = spawn(ns[0] as string, [
    ...ns.slice(1),
    ...['dnsmasq', '--no-daemon', '--port=0', `--interface=${names.agentIf}`, '--bind-interfaces'],
    ...['--dhcp-range=10.77.0.10,10.77.0.200,255.255.255.0', '--dhcp-match=set:ipxe,175'],
    ...['--dhcp-match=set:efi,option:client-arch,7', '--dhcp-boot=tag:ipxe,http://10.77.0.1:8080/boot.ipxe'],
    ...['--dhcp-boot=tag:!ipxe,tag:efi,ipxe.efi', '--dhcp-boot=tag:!ipxe,tag:!efi,undionly.kpxe'],
    ...['--enable-tftp', `--tftp-root=${path.join(CACHE, 'tftp')}`, '--dhcp-broadcast'],
    ...machines.map((m) => `--dhcp-host=${m.mac},${m.ipv4}`),
  ]);
  const httpd = spawn(ns[0] as string, [...ns.slice(1), 'busybox', 'httpd', '-f', '-p', '8080', '-h', www]);
  // The same router advertisements as the agent's: without one iPXE waits ~13 s for IPv6 (agent/ra.ts).
  await writeFile(path.join(dir, 'radvd.conf'), radvdConfig(names.agentIf));
  const radvd = spawn(ns[0] as string, [
    ...ns.slice(1),
    ...['radvd', '--nodaemon', '--config', path.join(dir, 'radvd.conf')],
    ...['--pidfile', path.join(dir, 'radvd.pid'), '--logmethod', 'stderr'],
  ]);
  // busybox httpd logs no requests; the guest prints its checkpoint call on its serial console
  // (appended across boots: only what follows the power-on counts).
  const seen = new Map<string, number>();
  const from = new Map<string, number>();
  const serial = (m: LabMachine) => path.join(dir, 'vms', m.name, 'serial.log');
  const poll = setInterval(() => {
    for (const m of machines) {
      if (seen.has(m.mac) || !from.has(m.mac)) continue;
      readFile(serial(m)).then(
        (buf) =>
          buf.subarray(from.get(m.mac)).toString().includes('vaquero-lab: checkpoint') &&
          !seen.has(m.mac) &&
          seen.set(m.mac, performance.now()),
        () => undefined,
      );
    }
  }, 200);
  /** Powers the machines on in waves, each wave once the previous one is at its checkpoint. */
  const bootWaves = async (): Promise<{ boots: number[]; wall: number }> => {
    const boots: number[] = [];
    const started = performance.now();
    seen.clear();
    from.clear();
    for (const wave of waves(machines)) {
      const on = performance.now();
      for (const m of wave) {
        const vmDir = path.join(dir, 'vms', m.name);
        await prepareVm(m, vmDir, await createTap(names, m.index));
        from.set(m.mac, (await stat(serial(m)).catch(() => undefined))?.size ?? 0);
        await chassis(names.labNs, vmDir, ['set', 'power', '1']);
      }
      const deadline = Date.now() + 300_000;
      while (!wave.every((m) => seen.has(m.mac)) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 200));
      for (const m of wave) boots.push(((seen.get(m.mac) ?? NaN) - on) / 1000);
    }
    return { boots, wall: (performance.now() - started) / 1000 };
  };
  try {
    // A first boot of every machine, not timed, as in the lab (whose measured rollout is its second):
    // OVMF sets up its variable store on a first boot, and the page cache warms up.
    await bootWaves();
    for (const m of machines)
      await chassis(names.labNs, path.join(dir, 'vms', m.name), ['set', 'power', '0']);
    return await bootWaves();
  } finally {
    clearInterval(poll);
    for (const m of machines) await killVm(path.join(dir, 'vms', m.name));
    dnsmasq.kill();
    httpd.kill();
    radvd.kill();
    await deleteLabNetwork(names);
  }
}

async function vaquero(dir: string): Promise<number> {
  const args = ['--state', path.join(dir, 'lab'), '--prefix', 'vqlbench', '--ui-port', '18233'];
  args.push('--temporal-port', '17234');
  try {
    await labCommand(['up', ...args], quiet);
    const connection = await Connection.connect({ address: '127.0.0.1:17234' });
    const client = new Client({ connection, namespace: 'default' });
    const sot = path.join(dir, 'lab', 'sot');
    const git = async (a: string[]) =>
      (
        await run('git', ['-C', sot, '-c', 'user.name=b', '-c', 'user.email=b@b.invalid', ...a])
      ).stdout.trim();
    const closed = async (sha: string) => {
      for (;;) {
        const d = await client.workflow
          .getHandle(`rollout/lab/${sha.slice(0, 7)}`)
          .describe()
          .catch(() => undefined);
        if (d && d.status.name !== 'RUNNING') return;
        await new Promise((r) => setTimeout(r, 1000));
      }
    };
    await closed(await git(['rev-parse', 'HEAD']));
    const file = path.join(sot, 'os/lab-linux.yaml');
    await writeFile(
      file,
      (await readFile(file, 'utf8')).replace('vaquero.marker=v1', 'vaquero.marker=bench'),
    );
    const started = performance.now();
    await git(['commit', '-q', '-am', 'bench']);
    await closed(await git(['rev-parse', 'HEAD']));
    const seconds = (performance.now() - started) / 1000;
    await connection.close();
    return seconds;
  } finally {
    await labCommand(['down', ...args, '--purge'], quiet);
  }
}

const model = (await validateSot(SOT)).model;
if (!model) throw new Error('examples/lab does not validate');
const machines = machinesFromModel(model, 'lab');
const dir = await mkdtemp(path.join(tmpdir(), 'vql-bench-'));
try {
  const base = await bare(machines, dir);
  const ours = await vaquero(dir);
  const rows = machines.map((m, i) => `  ${m.name} (${m.firmware}): ${base.boots[i]?.toFixed(1)} s`);
  process.stdout.write(
    [
      `bare boot (second boot), power-on -> checkpoint (dnsmasq + busybox httpd + radvd), waves 1/2/1:`,
      ...rows,
      `  wall time of the waves: ${base.wall.toFixed(1)} s`,
      `vaquero: SoT commit -> rollout closed (all ${machines.length} validated): ${ours.toFixed(1)} s`,
      `overhead: ${(ours - base.wall).toFixed(1)} s (${(ours / base.wall).toFixed(2)}x the bare waves)`,
      '',
    ].join('\n'),
  );
} finally {
  await rm(dir, { recursive: true, force: true });
}
