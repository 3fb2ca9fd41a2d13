// The lab's state directory (`--state`, .vaquero/lab by default): its SoT, the processes' pid and log
// files under run/, the machines' directories under vms/.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { validateSot } from '../../sot/validate';
import { CliError } from '../io';
import { machinesFromModel, type LabMachine } from './machines';
import type { LabNames } from './network';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const SITE = 'lab';

export interface LabOptions {
  names: LabNames;
  state: string;
  uiPort: number;
  temporalPort: number;
  purge: boolean;
}

export const pidFile = (o: LabOptions, name: string) => path.join(o.state, 'run', `${name}.pid`);
export const logFile = (o: LabOptions, name: string) => path.join(o.state, 'run', `${name}.log`);

export async function labMachines(o: LabOptions): Promise<LabMachine[]> {
  const sot = path.join(o.state, 'sot');
  const result = await validateSot(sot);
  if (!result.model) throw new CliError(`${sot} is not a valid SoT: vaquero validate ${sot}`);
  return machinesFromModel(result.model, SITE);
}
