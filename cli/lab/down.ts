// `vaquero lab down`: every lab process and VM stopped, both namespaces deleted.
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { stopOrphanRadvd } from '../../agent/ra';
import type { Io } from '../io';
import { stopDaemon } from './daemons';
import type { LabOptions } from './lab-state';
import { killVm } from './machines';
import { deleteLabNetwork } from './network';

export async function labDown(o: LabOptions, io: Io): Promise<void> {
  for (const name of ['fwd-ui', 'fwd-grpc', 'fwd-ui-ns', 'fwd-grpc-ns', 'agent', 'standalone'])
    await stopDaemon(o, name);
  // An agent that was killed left its radvd behind.
  await stopOrphanRadvd(path.join(o.state, 'agent'));
  const runDir = path.join(o.state, 'run');
  const bmcs = (await readdir(runDir).catch(() => [] as string[])).filter((f) => /^bmc-.*\.pid$/.test(f));
  for (const f of bmcs) await stopDaemon(o, f.replace(/\.pid$/, ''), 2000);
  const vms = await readdir(path.join(o.state, 'vms')).catch(() => [] as string[]);
  for (const vm of vms) await killVm(path.join(o.state, 'vms', vm));
  await deleteLabNetwork(o.names);
  if (o.purge) await rm(o.state, { recursive: true, force: true });
  io.out(
    `lab: down${o.purge ? `, ${o.state} removed` : ` (state kept in ${o.state}; --purge removes it)`}\n`,
  );
}
