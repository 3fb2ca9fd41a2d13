// One emulated BMC per lab machine: OpenIPMI's ipmi_sim on the machine's BMC address (on the lab
// bridge), port 623, whose chassis is cli/lab/chassis-control acting on the machine's QEMU.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CHASSIS_CONTROL, type LabMachine } from './machines';

export const BMC_USER = 'admin';
export const BMC_PASSWORD = 'secret';

/**
 * ipmi_sim's lan.conf (docs/lab.md, "BMCs"); the chassis program gets the VM directory as its first
 * argument.
 */
export function lanConf(machine: LabMachine, vmDir: string, password = BMC_PASSWORD): string {
  if (machine.bmc?.kind !== 'ipmi') throw new Error(`${machine.name} has no IPMI BMC in the SoT`);
  const guid = machine.uuid.replace(/-/g, '');
  return [
    `name "${machine.name}"`,
    'set_working_mc 0x20',
    'startlan 1',
    `  addr ${machine.bmc.address} ${machine.bmc.port}`,
    '  priv_limit admin',
    '  allowed_auths_admin none md2 md5 straight',
    `  guid ${guid}`,
    'endlan',
    `chassis_control "${path.join(vmDir, 'chassis')}"`,
    `user 2 true "${machine.bmc.username}" "${password}" admin 10 none md2 md5 straight`,
    '',
  ].join('\n');
}

const EMU = [
  'mc_setbmc 0x20',
  'mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr',
  'sel_enable 0x20 1000 0x0a',
  'mc_enable 0x20',
  '',
].join('\n');

/**
 * What ipmi_sim runs: it passes its own arguments only, so this names the machine. `get` (asked before
 * every command, and often) is answered in sh: a Python start under load can outlast ipmitool's wait.
 */
function chassisWrapper(vmDir: string): string {
  return [
    '#!/bin/sh',
    `dir='${vmDir}'`,
    'if [ "$1" = get ]; then',
    '  shift',
    '  for what in "$@"; do',
    '    case "$what" in',
    '      power)',
    '        on=0',
    '        pid=$(cat "$dir/qemu.pid" 2>/dev/null)',
    '        if [ -n "$pid" ] && grep -q "$dir/qmp.sock" "/proc/$pid/cmdline" 2>/dev/null &&',
    '          ! grep -q "^State:.Z" "/proc/$pid/status" 2>/dev/null; then on=1; fi',
    '        echo "power:$on" ;;',
    '      boot) echo "boot:$(cat "$dir/boot" 2>/dev/null || echo default)" ;;',
    '    esac',
    '  done',
    '  exit 0',
    'fi',
    `exec ${CHASSIS_CONTROL} "$dir" "$@"`,
    '',
  ].join('\n');
}

/** Writes `<vmDir>/bmc/` and the `chassis` wrapper ipmi_sim calls; returns ipmi_sim's argv. */
export async function prepareBmc(
  machine: LabMachine,
  vmDir: string,
  password = BMC_PASSWORD,
): Promise<string[]> {
  const dir = path.join(vmDir, 'bmc');
  await mkdir(path.join(dir, 'state'), { recursive: true });
  await writeFile(path.join(dir, 'lan.conf'), lanConf(machine, vmDir, password));
  await writeFile(path.join(dir, 'bmc.emu'), EMU);
  await writeFile(path.join(vmDir, 'chassis'), chassisWrapper(vmDir), { mode: 0o755 });
  return [
    'ipmi_sim',
    '-n',
    '-c',
    path.join(dir, 'lan.conf'),
    '-f',
    path.join(dir, 'bmc.emu'),
    '-s',
    path.join(dir, 'state'),
  ];
}
