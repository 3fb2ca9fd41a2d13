import { readFile } from 'node:fs/promises';
import { previewCommand } from './preview';
import { planCommand } from './plan';
import { rolloutCommand } from './rollout';
import { validateCommand } from './validate';
import { CliError, type Io } from './io';
import { RolloutClientError } from '../server/rollouts/errors';
import {
  cliConfigFromEnv,
  CliConfigSchema,
  type CliConfig,
  type CliConfigInput,
} from '../schemas/cli-config';
import { own } from '../schemas/common';

const USAGE = `usage: vaquero <command> [options]
       vaquero --help | --version

commands:
  validate <dir> [--json]                       check a source of truth; every problem as file:line: path: message
  plan <dir> --from <dir|git-ref> [--json]      hosts to reprovision and their waves, per site
  preview --mac <mac> <dir> [--stage N]         a host's rendered iPXE script and unattended config
  rollout <subcommand> [options]                follow and steer site rollouts: list, status, watch, pause,
                                                resume, approve, abort, retry-host (vaquero rollout --help)
  server --config <file.yaml> [--build-id <id>] the central server: webhooks, user API, orchestration worker
  agent --site <site> [options]                 a site agent: DHCP, TFTP, HTTP boot assets, power and jobs (docs/agent.md)
  migrate --from <store> --to <store>           copy model revisions and pointers: file:<dir> <-> etcd:<url,...>
  certs --out <dir> [--hosts h1,h2]             a development CA and server certificate for HTTPS
  standalone --sot <dir> --interface <if>       Temporal dev server + server + agent in one process
  lab up|down|status                            the virtual lab: QEMU machines, IPMI BMCs, standalone (docs/lab.md)
  version                                       the version of vaquero (also --version, -V)
`;

async function versionCommand(_args: string[], io: Io): Promise<number> {
  const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  io.out(`vaquero ${pkg.version}\n`);
  return 0;
}

const commands: Record<string, (args: string[], io: Io, config: CliConfig) => Promise<number>> = {
  validate: validateCommand,
  plan: planCommand,
  preview: previewCommand,
  rollout: rolloutCommand,
  // Imported when run: the server pulls in the Temporal worker, which the other commands do not need.
  server: async (args, io) => (await import('./server')).serverCommand(args, io),
  migrate: async (args, io) => (await import('./migrate')).migrateCommand(args, io),
  certs: async (args, io) => (await import('./certs')).certsCommand(args, io),
  standalone: async (args, io) => (await import('./standalone')).standaloneCommand(args, io),
  lab: async (args, io) => (await import('./lab/command')).labCommand(args, io),
  version: versionCommand,
  '--version': versionCommand,
  '-V': versionCommand,
};

const processIo: Io = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  cwd: () => process.cwd(),
};

/** Runs one CLI command and returns its exit code; errors become one line on stderr, never a stack trace. */
export async function main(
  argv: string[],
  io: Io = processIo,
  config: CliConfigInput = cliConfigFromEnv(process.env, process.stdout.isTTY === true),
): Promise<number> {
  const [name, ...args] = argv;
  // Asked for, the usage is the output; without a command it explains a usage error, like any other.
  if (!name) {
    io.err(USAGE);
    return 2;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    io.out(USAGE);
    return 0;
  }
  const command = own(commands, name);
  if (!command) {
    io.err(`vaquero: unknown command "${name}"\n${USAGE}`);
    return 2;
  }
  try {
    return await command(args, io, CliConfigSchema.parse(config));
  } catch (err) {
    if (err instanceof CliError || err instanceof RolloutClientError) {
      io.err(`vaquero ${name}: ${err.message}\n`);
      return err.exitCode;
    }
    const message = err instanceof Error ? err.message : String(err);
    io.err(`vaquero ${name}: internal error: ${message}\n`);
    return 70;
  }
}
