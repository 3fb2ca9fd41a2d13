// A lab network for one test: namespaces `vql<id>-agent` / `vql<id>-lab` (cli/lab/network.ts),
// radvd and the boot servers (test/helpers/boot-services.ts) in the agent namespace, QEMU machines
// started through chassis-control in the lab namespace. Everything is killed and deleted in t.after.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { NetbootTable } from '../../agent/state/netboot-table';
import type { ArmEntry } from '../../schemas/agent';
import { chassis, killVm, prepareVm, type LabMachine, type VmFiles } from '../../cli/lab/machines';
import {
  AGENT_ADDRESS,
  createLabNetwork,
  createTap,
  deleteLabNetwork,
  enableIpv6Forwarding,
  labNames,
  radvdConf,
  type LabNames,
} from '../../cli/lab/network';
import type { BootEvent } from '../../schemas/rollout';
import { netnsProblem } from '../../cli/lab/netns';

const BOOT_SERVICES = fileURLToPath(new URL('./boot-services.ts', import.meta.url));

export const LAB_CACHE = path.join(process.env.VAQUERO_CACHE ?? '/var/cache/vaquero', 'lab');
const TOOLS = ['/usr/bin/qemu-system-x86_64', '/usr/sbin/radvd'];

/** Why QEMU tests cannot run here (undefined when they can); CI must be able to. */
export async function qemuUnusable(): Promise<string | undefined> {
  const netns = await netnsProblem();
  if (netns) return netns;
  const missing = TOOLS.filter((tool) => !existsSync(tool));
  if (missing.length) return `${missing.join(', ')} missing (bash scripts/install-deps.sh)`;
  if (!['vmlinuz', 'initramfs', 'tftp/ipxe.efi'].every((f) => existsSync(path.join(LAB_CACHE, f))))
    return `no lab kernel in ${LAB_CACHE} (bash scripts/install-lab.sh)`;
  return undefined;
}

/** Skips on a developer machine without the tools; fails in CI, which must have them. */
export async function qemuOrSkip(t: TestContext): Promise<boolean> {
  const reason = await qemuUnusable();
  if (!reason) return true;
  if (process.env.CI && process.env.CI !== 'false') throw new Error(`${reason}; CI must provide it`);
  t.skip(reason);
  return false;
}

export interface BootLab {
  names: LabNames;
  dir: string;
  /** Every boot event the servers reported, in order. */
  events: BootEvent[];
  /** Resolves with the first event (past or future) that matches, or rejects after `timeoutMs`. */
  waitFor(match: (e: BootEvent) => boolean, timeoutMs: number, what: string): Promise<BootEvent>;
  /** Creates the machine's tap and directory and powers it on (chassis-control `set power 1`). */
  powerOn(machine: LabMachine): Promise<VmFiles>;
  /** The machine's serial console so far. */
  serial(machine: LabMachine): Promise<string>;
}

export interface BootLabOptions {
  sot: string;
  site: string;
  /** Entries written to the netboot table before the servers start. */
  armed: ArmEntry[];
}

/** The lab kernel and initramfs under `<files>/lab/`, as the lab SoT's `lab-linux` OS names them. */
async function filesDir(dir: string): Promise<string> {
  const files = path.join(dir, 'files');
  await mkdir(path.join(files, 'lab'), { recursive: true });
  for (const name of ['vmlinuz', 'initramfs'])
    await copyFile(path.join(LAB_CACHE, name), path.join(files, 'lab', name));
  return files;
}

export async function startBootLab(t: TestContext, opts: BootLabOptions): Promise<BootLab> {
  const names = labNames(`vql${randomBytes(2).toString('hex')}`);
  const dir = await mkdtemp(path.join(tmpdir(), `${names.agentNs}-`));
  const children: ChildProcess[] = [];
  const vmDirs: string[] = [];
  t.after(async () => {
    await Promise.allSettled(vmDirs.map((d) => killVm(d)));
    for (const child of children) {
      if (child.exitCode === null) child.kill('SIGKILL');
      child.stdout?.destroy();
      child.stderr?.destroy();
    }
    await deleteLabNetwork(names);
    if (!process.env.VAQUERO_KEEP_LAB) await rm(dir, { recursive: true, force: true });
  });
  await createLabNetwork(names, []);
  await enableIpv6Forwarding(names.agentNs);
  await writeFile(path.join(dir, 'radvd.conf'), radvdConf(names));
  const radvdArgs = [
    '-n',
    '-C',
    path.join(dir, 'radvd.conf'),
    '-p',
    path.join(dir, 'radvd.pid'),
    '-m',
    'stderr',
  ];
  children.push(spawn('ip', ['netns', 'exec', names.agentNs, 'radvd', ...radvdArgs], { stdio: 'ignore' }));

  const netboot = path.join(dir, 'netboot.json');
  const table = new NetbootTable(netboot);
  for (const entry of opts.armed) await table.arm(entry);
  const args = ['--sot', opts.sot, '--site', opts.site, '--netboot', netboot, '--files', await filesDir(dir)];
  args.push('--tftp-root', path.join(LAB_CACHE, 'tftp'));
  const services = spawn(
    'ip',
    // node --import tsx, not the tsx launcher: the launcher runs the script in a child of its own,
    // which a SIGKILL of the launcher leaves running, holding this process's stdout pipe open.
    [
      ...[
        'netns',
        'exec',
        names.agentNs,
        process.execPath,
        '--import',
        import.meta.resolve('tsx'),
        BOOT_SERVICES,
      ],
      ...[...args, '--address', AGENT_ADDRESS],
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.push(services);
  let stderr = '';
  services.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-20_000)));

  const events: BootEvent[] = [];
  const waiters = new Set<() => void>();
  const ready = new Promise<void>((resolve, reject) => {
    services.once('exit', (code) => reject(new Error(`boot services exited (${code}): ${stderr}`)));
    createInterface({ input: services.stdout }).on('line', (line) => {
      const msg = JSON.parse(line) as { ready?: boolean; event?: BootEvent };
      if (msg.ready) resolve();
      if (msg.event) events.push(msg.event);
      for (const wake of waiters) wake();
    });
  });
  await ready;

  return {
    names,
    dir,
    events,
    waitFor: (match, timeoutMs, what) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const found = events.find(match);
          if (!found) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(found);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          const seen = events.map((e) => `${e.kind} ${e.mac} ${e.detail ?? ''}`).join('\n  ');
          reject(new Error(`no ${what} within ${timeoutMs / 1000} s; events:\n  ${seen}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
    async powerOn(machine) {
      const tap = await createTap(names, machine.index);
      const vmDir = path.join(dir, 'vms', machine.name);
      vmDirs.push(vmDir);
      const files = await prepareVm(machine, vmDir, tap);
      await chassis(names.labNs, vmDir, ['set', 'power', '1']);
      return files;
    },
    serial: (machine) => readFile(path.join(dir, 'vms', machine.name, 'serial.log'), 'utf8').catch(() => ''),
  };
}
