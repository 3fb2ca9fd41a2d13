// `vaquero lab up|down|status`: the virtual lab of docs/lab.md. Machines and BMCs live in the
// `vql-lab` namespace, `vaquero standalone --no-agent` (Temporal dev server, server) and the site's
// `vaquero agent` (its own process, reading standalone's model store) in `vql-agent`;
// nothing is added to the root namespace but two forwarders on 127.0.0.1 (Temporal UI and gRPC)
// that reach the agent namespace through Unix sockets in the state directory.
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CliError, type Io } from '../io';
import { labDown } from './down';
import type { LabOptions } from './lab-state';
import { labNames, type LabNames } from './network';
import { labStatus } from './status';
import { labUp } from './up';

const USAGE = `usage: vaquero lab up|down|status [--state <dir>] [--ui-port 8233] [--temporal-port 7234] [--purge]
                                  [--prefix vql]  (namespaces <prefix>-agent, <prefix>-lab; tests use their own)

  up      namespaces vql-agent/vql-lab, one ipmi_sim BMC per machine of <state>/sot (a copy of
          examples/lab: edit and commit there), machines powered off, then vaquero standalone and
          the agent; run again, it starts only what is not running (a killed agent, say)
  down    stops everything and deletes the namespaces (--purge also removes the state directory)
  status  what runs, each machine's power state and BMC power commands
`;

export async function labCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      state: { type: 'string' },
      'ui-port': { type: 'string' },
      'temporal-port': { type: 'string' },
      purge: { type: 'boolean' },
      prefix: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [sub] = positionals;
  if (values.help || !sub) {
    if (values.help) io.out(USAGE);
    else io.err(USAGE);
    return values.help ? 0 : 2;
  }
  if (process.getuid?.() !== 0)
    throw new CliError('the lab needs root (network namespaces, taps): run it as root');
  let names: LabNames;
  try {
    names = labNames(values.prefix ?? 'vql');
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  const o: LabOptions = {
    names,
    state: path.resolve(values.state ?? '.vaquero/lab'),
    uiPort: Number(values['ui-port'] ?? 8233),
    temporalPort: Number(values['temporal-port'] ?? 7234),
    purge: values.purge ?? false,
  };
  if (sub === 'up') await labUp(o, io);
  else if (sub === 'down') await labDown(o, io);
  else if (sub === 'status') return labStatus(o, io);
  else throw new CliError(`unknown lab command "${sub}"\n${USAGE}`);
  return 0;
}
