// `vaquero lab status`: what runs, each agent and the hosts it served, and each machine's power state
// and the power commands its BMC got.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Io } from '../io';
import { labAgents, RACK_DAEMONS, type LabAgent } from './agents';
import { alive } from './daemons';
import { labMachines, type LabOptions } from './lab-state';
import { chassis, powerCommands, type LabMachine } from './machines';
import { namespaceExists } from './netns';
import { rackNames } from './rack';

/**
 * The hosts an agent served and how often: each iPXE script it handed out is one boot it served
 * (a DISCOVER reaches both agents of a broadcast domain; the script comes from the one the host chose).
 * Read from the agent's boot-traffic.log, which it keeps across restarts.
 */
export async function servedBy(agent: LabAgent, machines: LabMachine[]): Promise<Map<string, number>> {
  const names = new Map(machines.map((m) => [m.mac, m.name]));
  const text = await readFile(path.join(agent.stateDir, 'boot-traffic.log'), 'utf8').catch(() => '');
  const served = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [mac, , kind] = line.split(' ');
    const name = mac && names.get(mac);
    if (name && kind === 'ipxe') served.set(name, (served.get(name) ?? 0) + 1);
  }
  return served;
}

async function agentLines(o: LabOptions, machines: LabMachine[]): Promise<string[]> {
  const lines: string[] = [];
  for (const agent of labAgents(o)) {
    const pid = await alive(o, agent.daemon);
    const served = [...(await servedBy(agent, machines))].map(([host, n]) => `${host} x${n}`);
    lines.push(
      `${agent.name} (${agent.bootInterface} in ${agent.ns}): ${pid ? `running (pid ${pid})` : 'stopped'}, ` +
        `served ${served.length ? served.join(', ') : 'no host yet'}`,
    );
  }
  return lines;
}

/** Exit code 0 when standalone and both agents run, 3 otherwise. */
export async function labStatus(o: LabOptions, io: Io): Promise<number> {
  const { names } = o;
  const r = rackNames(names);
  const lines: string[] = [];
  for (const ns of [names.agentNs, names.labNs, r.agentBNs, r.relayNs])
    lines.push(`namespace ${ns}: ${(await namespaceExists(ns)) ? 'present' : 'absent'}`);
  for (const name of ['standalone', 'fwd-ui', 'fwd-grpc', ...RACK_DAEMONS]) {
    const pid = await alive(o, name);
    lines.push(`${name}: ${pid ? `running (pid ${pid})` : 'stopped'}`);
  }
  const machines = existsSync(path.join(o.state, 'sot')) ? await labMachines(o) : [];
  lines.push(...(await agentLines(o, machines)));
  for (const m of machines) {
    const vmDir = path.join(o.state, 'vms', m.name);
    const power = (await namespaceExists(names.labNs))
      ? (await chassis(names.labNs, vmDir, ['get', 'power']).catch(() => '?')).trim()
      : 'power:?';
    const commands = await powerCommands(vmDir);
    const ons = commands.filter((c) => c === 'power 1').length;
    const bmc = (await alive(o, `bmc-${m.name}`)) ? 'up' : 'down';
    lines.push(
      `${m.name} ${m.firmware} ${m.mac} ${m.ipv4} (${m.subnet}): ${power}, BMC ${m.bmc?.address ?? '-'} ${bmc}, ${ons} power-ons`,
    );
  }
  io.out(`${lines.join('\n')}\n`);
  let running = Boolean(await alive(o, 'standalone'));
  for (const agent of labAgents(o)) running = running && Boolean(await alive(o, agent.daemon));
  return running ? 0 : 3;
}
