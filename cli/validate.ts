import path from 'node:path';
import { formatDiagnostic } from '../sot/diagnostics';
import { validateSot } from '../sot/validate';
import { CliError, parse, type Io } from './io';

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

export async function validateCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(args, { json: { type: 'boolean', default: false } });
  const [dir] = positionals;
  if (!dir || positionals.length > 1) throw new CliError('usage: vaquero validate <dir> [--json]');
  const root = path.resolve(io.cwd(), dir);
  const result = await validateSot(root);
  if (values.json) {
    io.out(
      `${JSON.stringify({ valid: result.diagnostics.length === 0, problems: result.diagnostics }, null, 2)}\n`,
    );
  } else if (result.model) {
    const sites = Object.values(result.model.sites);
    const hosts = sites.reduce((n, s) => n + s.hosts.length, 0);
    const groups = Object.keys(result.model.groups).length;
    const counts = [count(sites.length, 'site'), count(hosts, 'host'), count(groups, 'host group')];
    io.out(`${dir}: valid (${counts.join(', ')})\n`);
  } else {
    for (const d of result.diagnostics) io.err(`${formatDiagnostic(d)}\n`);
    io.err(`${dir}: ${count(result.diagnostics.length, 'problem')}\n`);
  }
  return result.model ? 0 : 1;
}
