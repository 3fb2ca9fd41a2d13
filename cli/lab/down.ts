// `vaquero lab down`: every lab process and VM stopped, the lab's namespaces deleted.
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { stopOrphanRadvd } from '../../agent/ra';
import type { Io } from '../io';
import { labAgents, RACK_DAEMONS } from './agents';
import { stopDaemon } from './daemons';
import type { LabOptions } from './lab-state';
import { killVm } from './machines';
import { deleteLabNetwork } from './network';
import { stopPrometheus } from './prometheus';
import { deleteRackNetwork } from './rack';

export async function labDown(o: LabOptions, io: Io): Promise<void> {
  const agents = labAgents(o);
  for (const name of ['fwd-ui', 'fwd-grpc', ...agents.map((a) => a.daemon), ...RACK_DAEMONS])
    await stopDaemon(o, name);
  for (const name of ['fwd-ui-ns', 'fwd-grpc-ns', 'standalone']) await stopDaemon(o, name);
  await stopPrometheus(o);
  // An agent that was killed left its radvd behind.
  for (const agent of agents) await stopOrphanRadvd(agent.stateDir);
  const runDir = path.join(o.state, 'run');
  const bmcs = (await readdir(runDir).catch(() => [] as string[])).filter((f) => /^bmc-.*\.pid$/.test(f));
  for (const f of bmcs) await stopDaemon(o, f.replace(/\.pid$/, ''), 2000);
  const vms = await readdir(path.join(o.state, 'vms')).catch(() => [] as string[]);
  for (const vm of vms) await killVm(path.join(o.state, 'vms', vm));
  await deleteRackNetwork(o.names);
  await deleteLabNetwork(o.names);
  if (o.purge) await rm(o.state, { recursive: true, force: true });
  io.out(
    `lab: down${o.purge ? `, ${o.state} removed` : ` (state kept in ${o.state}; --purge removes it)`}\n`,
  );
}
