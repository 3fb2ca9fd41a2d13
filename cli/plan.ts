import path from 'node:path';
import type { HostsFileCache } from '../sot/fast-hosts';
import { planChanges } from '../sot/plan';
import { planText } from '../sot/plan-text';
import { CliError, parse, type Io } from './io';
import { loadFrom, loadValid } from './sot-source';

export async function planCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(args, {
    from: { type: 'string' },
    json: { type: 'boolean', default: false },
  });
  const [dir] = positionals;
  if (!dir || positionals.length > 1 || !values.from) {
    throw new CliError('usage: vaquero plan <dir> --from <dir|git-ref> [--json]');
  }
  const root = path.resolve(io.cwd(), dir);
  // Both trees mostly share their hosts files: each distinct one is read once.
  const cache: HostsFileCache = new Map();
  const model = await loadValid(root, io, dir, cache);
  const oldModel = await loadFrom(values.from, root, io, cache);
  const plan = planChanges(oldModel, model, values.from, dir);
  io.out(values.json ? `${JSON.stringify(plan, null, 2)}\n` : planText(plan));
  return 0;
}
