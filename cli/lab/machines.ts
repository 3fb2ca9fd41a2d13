// Lab machines: what QEMU runs for each host of the lab site, and the directory it runs from.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { copyFile, mkdir, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { bootInterface, type Bmc } from '../../schemas/host';
import type { Model } from '../../schemas/model';
import { own } from '../../schemas/common';

const run = promisify(execFile);

export const CHASSIS_CONTROL = fileURLToPath(new URL('./chassis-control', import.meta.url));
export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS.fd';
/** A lab machine's disk: a sparse file. */
export const LAB_DISK_BYTES = 64 * 1024 * 1024;

export interface LabMachine {
  name: string;
  /** 1-based; names the tap (`<prefix>-tap<index>`). */
  index: number;
  mac: string;
  uuid: string;
  firmware: 'bios' | 'uefi';
  ipv4: string;
  /** The boot interface's subnet id: which bridge (rack) the machine's tap is on. */
  subnet: string;
  /** The host's BMC, when it has one: ipmi_sim, or cli/lab/redfish-bmc.ts (both on chassis-control). */
  bmc?: { kind: 'ipmi' | 'redfish'; address: string; port: number; username: string };
}

function labBmc(bmc: Bmc): Pick<LabMachine, 'bmc'> {
  if (bmc.type === 'ipmi')
    return { bmc: { kind: 'ipmi', address: bmc.address, port: bmc.port, username: bmc.username } };
  if (bmc.type !== 'redfish') return {};
  const url = new URL(bmc.address);
  const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
  return { bmc: { kind: 'redfish', address: url.hostname, port, username: bmc.username } };
}

/** The machines of a site of the model, in the order of its host files. */
export function machinesFromModel(model: Model, siteId: string): LabMachine[] {
  const site = own(model.sites, siteId);
  if (!site) throw new Error(`the SoT has no site "${siteId}"`);
  return site.hosts.map((host, i) => {
    const iface = bootInterface(host);
    return {
      name: host.name,
      index: i + 1,
      mac: iface.mac.toLowerCase(),
      uuid: host.uuid ?? randomUUID(),
      firmware: host.firmware,
      ipv4: iface.ipv4,
      subnet: iface.subnet,
      ...(host.bmc ? labBmc(host.bmc) : {}),
    };
  });
}

export interface VmFiles {
  dir: string;
  qmp: string;
  serial: string;
  /** One line per BMC `set` command (chassis-control). */
  powerLog: string;
  pid: string;
}

export function vmFiles(dir: string): VmFiles {
  return {
    dir,
    qmp: path.join(dir, 'qmp.sock'),
    serial: path.join(dir, 'serial.log'),
    powerLog: path.join(dir, 'power.log'),
    pid: path.join(dir, 'qemu.pid'),
  };
}

/**
 * QEMU's argv (docs/lab.md, "Machines"): TCG (KVM does not run guests here), virtio-net first in the
 * boot order and the machine's own disk after it (virtio-blk, its serial the machine's name, kept
 * across power cycles and `lab down`/`up`), so a machine that is not armed leaves iPXE for its disk:
 * blank until an image is deployed to it, then the OS on it (`-boot strict=on` keeps a machine
 * with a blank disk from falling back to the NIC). UEFI machines use OVMF with
 * the NIC's option ROM removed, so EDK2's own PXE fetches ipxe.efi over TFTP first, like real firmware.
 */
export function qemuArgv(machine: LabMachine, dir: string, tap: string): string[] {
  const files = vmFiles(dir);
  const uefi = machine.firmware === 'uefi';
  return [
    'qemu-system-x86_64',
    ...['-name', machine.name, '-accel', 'tcg,tb-size=32', '-m', uefi ? '256' : '128', '-smp', '1'],
    ...['-nographic', '-nodefaults', '-display', 'none', '-uuid', machine.uuid],
    ...['-chardev', `file,id=serial0,path=${files.serial},append=on`, '-serial', 'chardev:serial0'],
    ...['-qmp', `unix:${files.qmp},server=on,wait=off`],
    ...['-netdev', `tap,id=n0,ifname=${tap},script=no,downscript=no`],
    '-device',
    `virtio-net-pci,netdev=n0,mac=${machine.mac},bootindex=0${uefi ? ',romfile=' : ''}`,
    ...['-drive', `file=${path.join(dir, 'disk.img')},if=none,id=d0,format=raw,cache=writeback`],
    ...['-device', `virtio-blk-pci,drive=d0,bootindex=1,serial=${machine.name}`, '-boot', 'strict=on'],
    ...(uefi
      ? [
          ...['-drive', `if=pflash,format=raw,readonly=on,file=${OVMF_CODE}`],
          ...['-drive', `if=pflash,format=raw,file=${path.join(dir, 'OVMF_VARS.fd')}`],
          // No PXE over IPv6 boot option (the lab boots over IPv4): after the local-disk script it
          // would wait for a DHCPv6 server before OVMF tries the disk (docs/lab.md, "Machines").
          ...['-fw_cfg', 'name=opt/org.tianocore/IPv6PXESupport,string=n'],
        ]
      : []),
  ];
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

/** Writes a machine's directory: qemu.json for chassis-control, its disk (kept), UEFI variables. */
export async function prepareVm(machine: LabMachine, dir: string, tap: string): Promise<VmFiles> {
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'qemu.json'), `${JSON.stringify(qemuArgv(machine, dir, tap), null, 1)}\n`);
  await writeFile(path.join(dir, 'machine.json'), `${JSON.stringify(machine, null, 2)}\n`);
  const disk = path.join(dir, 'disk.img');
  if (!(await exists(disk))) await writeFile(disk, '');
  // Sparse: room for the lab OS images (24 MiB); a disk of an older lab (1 MiB) grows, keeping its data.
  if ((await stat(disk)).size < LAB_DISK_BYTES) await truncate(disk, LAB_DISK_BYTES);
  const vars = path.join(dir, 'OVMF_VARS.fd');
  if (machine.firmware === 'uefi' && !(await exists(vars))) await copyFile(OVMF_VARS, vars);
  return vmFiles(dir);
}

/** Runs chassis-control for a machine inside the lab namespace (what ipmi_sim does on a command). */
export async function chassis(labNs: string, dir: string, args: string[]): Promise<string> {
  const { stdout } = await run('ip', ['netns', 'exec', labNs, CHASSIS_CONTROL, dir, ...args], {
    timeout: 5_000,
    encoding: 'utf8',
  });
  return stdout;
}

/** The BMC `set` commands a machine got so far, e.g. `power 1`, `reset 1` (one per line of power.log). */
export async function powerCommands(dir: string): Promise<string[]> {
  const text = await readFile(vmFiles(dir).powerLog, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split(' ').slice(1).join(' '));
}

/** Kills a machine's QEMU by its pid file (teardown when QMP may not answer). */
export async function killVm(dir: string): Promise<void> {
  const pid = Number((await readFile(vmFiles(dir).pid, 'utf8').catch(() => '')).trim());
  if (!pid) return;
  try {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    if (cmdline.includes(vmFiles(dir).qmp)) process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}
