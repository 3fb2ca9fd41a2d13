// Issue 4: real firmware against our boot servers. QEMU machines in a lab namespace get their lease
// from our DHCP server, their iPXE script and kernel from our HTTP server (UEFI first fetches ipxe.efi
// over our TFTP, through OVMF's own PXE), boot the lab kernel and call their checkpoint URL. A machine
// that is not armed gets the local-disk script and never asks for a kernel.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { ArmEntry } from '../../schemas/agent';
import { validateSot } from '../../sot/validate';
import { machinesFromModel, type LabMachine } from '../../cli/lab/machines';
import type { BootEvent } from '../../schemas/rollout';
import { qemuOrSkip, startBootLab, type BootLab } from '../helpers/qemu';

const SOT = fileURLToPath(new URL('../../examples/lab', import.meta.url));
const BOOT_TIMEOUT_MS = 120_000;

async function labMachines(): Promise<LabMachine[]> {
  const result = await validateSot(SOT);
  assert.ok(result.model, JSON.stringify(result.diagnostics));
  return machinesFromModel(result.model, 'lab');
}

function armed(machine: LabMachine): ArmEntry {
  return {
    mac: machine.mac,
    site: 'lab',
    host: machine.name,
    commit: 'c1',
    stage: 1,
    workflowId: `reprovision-lab-${machine.name}`,
    armedAt: new Date().toISOString(),
    token: randomBytes(24).toString('base64url'),
  };
}

function byFirmware(machines: LabMachine[], firmware: 'bios' | 'uefi'): LabMachine {
  const machine = machines.find((m) => m.firmware === firmware);
  assert.ok(machine, `examples/lab has a ${firmware} machine`);
  return machine;
}

/** The kinds of a machine's events in order, repeats of the same kind collapsed. */
function kindsOf(events: BootEvent[], mac: string): string[] {
  const kinds: string[] = [];
  for (const e of events) if (e.mac === mac && kinds.at(-1) !== e.kind) kinds.push(e.kind);
  return kinds;
}

/** The serial console once it matches (the guest prints after its request returns). */
async function serialMatching(lab: BootLab, machine: LabMachine, re: RegExp): Promise<string> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const text = await lab.serial(machine);
    if (re.test(text) || Date.now() > deadline) return text;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Powers the machine on and waits for its checkpoint; returns the seconds it took. */
async function bootToCheckpoint(t: TestContext, lab: BootLab, machine: LabMachine): Promise<number> {
  const started = performance.now();
  await lab.powerOn(machine);
  try {
    await lab.waitFor((e) => e.kind === 'checkpoint' && e.mac === machine.mac, BOOT_TIMEOUT_MS, 'checkpoint');
  } catch (err) {
    t.diagnostic(`serial console of ${machine.name}:\n${(await lab.serial(machine)).slice(-3000)}`);
    throw err;
  }
  const seconds = (performance.now() - started) / 1000;
  t.diagnostic(`${machine.name} (${machine.firmware}): power on -> checkpoint in ${seconds.toFixed(1)} s`);
  return seconds;
}

test('BIOS: iPXE ROM gets our lease and script, boots the kernel, calls the checkpoint; unarmed boots disk', async (t) => {
  if (!(await qemuOrSkip(t))) return;
  const machines = await labMachines();
  const bios = machines.filter((m) => m.firmware === 'bios');
  const [machine, unarmed] = bios;
  assert.ok(machine && unarmed, 'examples/lab has two BIOS machines');
  const lab = await startBootLab(t, { sot: SOT, site: 'lab', armed: [armed(machine)] });
  await lab.powerOn(unarmed);
  await bootToCheckpoint(t, lab, machine);

  const kinds = kindsOf(lab.events, machine.mac);
  assert.deepEqual(kinds.slice(0, 5), ['dhcp', 'ipxe', 'kernel', 'initrd', 'dhcp'], kinds.join(' '));
  assert.equal(kinds.at(-1), 'checkpoint');
  const checkpoint = lab.events.find((e) => e.kind === 'checkpoint' && e.mac === machine.mac);
  assert.equal(checkpoint?.stage, 1);
  const dhcp = lab.events.filter((e) => e.kind === 'dhcp' && e.mac === machine.mac).map((e) => e.detail);
  assert.ok(dhcp.includes('REQUEST (selecting) -> ACK 10.77.0.11'), dhcp.join('; '));
  const lease = /vaquero-lab: lease 10\.77\.0\.11 on eth0/;
  assert.match(await serialMatching(lab, machine, lease), lease);

  // The unarmed machine asked for an address (the ROM always does) but got the local-disk script: no
  // kernel, and no PXE loop (its ROM ran once: one DISCOVER and one REQUEST).
  const other = lab.events.filter((e) => e.mac === unarmed.mac);
  assert.ok(other.length > 0, 'the unarmed machine network-booted first');
  assert.deepEqual(new Set(other.map((e) => e.kind)), new Set(['dhcp']));
  assert.ok(other.length <= 2, other.map((e) => e.detail).join('; '));
});

test('UEFI: OVMF PXE fetches ipxe.efi over our TFTP, then iPXE boots the kernel and calls the checkpoint', async (t) => {
  if (!(await qemuOrSkip(t))) return;
  const machine = byFirmware(await labMachines(), 'uefi');
  const lab = await startBootLab(t, { sot: SOT, site: 'lab', armed: [armed(machine)] });
  await bootToCheckpoint(t, lab, machine);

  const kinds = kindsOf(lab.events, machine.mac);
  assert.deepEqual(kinds.slice(0, 6), ['dhcp', 'tftp', 'dhcp', 'ipxe', 'kernel', 'initrd'], kinds.join(' '));
  assert.equal(kinds.at(-1), 'checkpoint');
  const tftp = lab.events.find((e) => e.kind === 'tftp' && e.mac === machine.mac);
  assert.match(tftp?.detail ?? '', /^10\.77\.0\.14 ipxe\.efi$/);
  const called = /vaquero-lab: checkpoint http:\/\/10\.77\.0\.1:8080\/checkpoint\//;
  assert.match(await serialMatching(lab, machine, called), called);
});
