// `vaquero lab status`: what runs, and each machine's power state and the power commands its BMC got.
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Io } from '../io';
import { alive } from './daemons';
import { labMachines, type LabOptions } from './lab-state';
import { chassis, powerCommands } from './machines';
import { namespaceExists } from './netns';

/** Exit code 0 when standalone and the agent run, 3 otherwise. */
export async function labStatus(o: LabOptions, io: Io): Promise<number> {
  const { names } = o;
  const lines: string[] = [];
  for (const ns of [names.agentNs, names.labNs])
    lines.push(`namespace ${ns}: ${(await namespaceExists(ns)) ? 'present' : 'absent'}`);
  for (const name of ['standalone', 'agent', 'fwd-ui', 'fwd-grpc']) {
    const pid = await alive(o, name);
    lines.push(`${name}: ${pid ? `running (pid ${pid})` : 'stopped'}`);
  }
  const machines = existsSync(path.join(o.state, 'sot')) ? await labMachines(o) : [];
  for (const m of machines) {
    const vmDir = path.join(o.state, 'vms', m.name);
    const power = (await namespaceExists(names.labNs))
      ? (await chassis(names.labNs, vmDir, ['get', 'power']).catch(() => '?')).trim()
      : 'power:?';
    const commands = await powerCommands(vmDir);
    const ons = commands.filter((c) => c === 'power 1').length;
    const bmc = (await alive(o, `bmc-${m.name}`)) ? 'up' : 'down';
    lines.push(
      `${m.name} ${m.firmware} ${m.mac} ${m.ipv4}: ${power}, BMC ${m.bmc?.address ?? '-'} ${bmc}, ${ons} power-ons`,
    );
  }
  io.out(`${lines.join('\n')}\n`);
  return (await alive(o, 'standalone')) && (await alive(o, 'agent')) ? 0 : 3;
}
