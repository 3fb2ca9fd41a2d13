import path from 'node:path';
import { ipxeScript, renderStage } from '../sot/boot-chain';
import { BOOT_TOKEN_PLACEHOLDER } from '../sot/render';
import { MacSchema } from '../schemas/common';
import { CliError, parse, type Io } from './io';
import { loadValid } from './sot-source';

export async function previewCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(args, {
    mac: { type: 'string' },
    stage: { type: 'string', default: '1' },
  });
  const [dir] = positionals;
  if (!dir || positionals.length > 1 || !values.mac) {
    throw new CliError('usage: vaquero preview --mac <mac> <dir> [--stage N]');
  }
  const mac = MacSchema.safeParse(values.mac);
  if (!mac.success) throw new CliError(`--mac ${values.mac}: not a MAC address like 52:54:00:12:34:56`);
  const model = await loadValid(path.resolve(io.cwd(), dir), io, dir);
  const found = Object.entries(model.sites)
    .flatMap(([siteId, s]) => s.hosts.map((host) => ({ siteId, host })))
    .find(({ host }) => host.interfaces.some((i) => i.mac === mac.data));
  if (!found) throw new CliError(`no host in ${dir} has MAC ${mac.data}`, 1);
  const stages = model.groups[found.host.group]?.boots.length ?? 0;
  const stage = Number.parseInt(values.stage, 10);
  if (!Number.isInteger(stage) || stage < 1 || stage > stages) {
    throw new CliError(`--stage ${values.stage}: host ${found.host.name} has boot stages 1 to ${stages}`);
  }
  const rendered = renderStage(model, found.siteId, found.host, stage - 1);
  const ctx = rendered.context;
  io.out(
    `# host ${found.siteId}/${found.host.name} (${ctx.host.mac}, ${ctx.host.ipv4}), group ${found.host.group}, ` +
      `stage ${rendered.stage}/${stages}: ${rendered.profile}\n`,
  );
  io.out(
    `# ${BOOT_TOKEN_PLACEHOLDER} stands for the random token the agent makes each time it arms the host\n`,
  );
  io.out(`# --- iPXE script, served at ${ctx.urls.ipxe}\n${ipxeScript(rendered)}`);
  if (rendered.unattended) {
    const u = rendered.unattended;
    io.out(
      `# --- ${u.type} from assets/${u.template}, served at ${ctx.urls.unattended}\n${u.content.trimEnd()}\n`,
    );
  } else {
    io.out('# --- no unattended config for this boot profile\n');
  }
  return 0;
}
