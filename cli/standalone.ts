// `vaquero standalone --sot <dir> --interface <if>`: everything in one process for a lab or a small
// site. A Temporal dev server (unless TEMPORAL_ADDRESS names one), the server with a local SoT source
// polling <dir> and a file model store, and the site agent with its boot services on <if>, reading
// that store directly. Stopped with SIGINT/SIGTERM, Temporal with it.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Connection } from '@temporalio/client';
import { validateSot } from '../sot/validate';
import { AgentConfigSchema } from '../agent/config';
import { CliError, type Io } from './io';
import { parseServerConfig } from '../server/config';

const USAGE = `usage: vaquero standalone --sot <dir> --interface <if> [options]

  --sot <dir>            the source of truth (a git working tree: each commit is applied; else file changes)
  --interface <if>       the boot network interface the agent serves (DHCP, TFTP, HTTP)
  --site <id>            the site this agent serves (default: the only site of the SoT)
  --state <dir>          state: Temporal database, model store, agent cache (default ./.vaquero/standalone)
  --files <dir>          served under /files/ by the agent (default <state>/files)
  --tftp-root <dir>      iPXE binaries for TFTP (default $VAQUERO_CACHE/lab/tftp if present, else /usr/lib/ipxe)
  --api-port <port>      the server's HTTP API on 127.0.0.1 (default 8081; the agent's assets use the SoT's port)
  --temporal-port <port> the dev server's frontend on 127.0.0.1 (default 7233); its UI is on --ui-port (8233)
  --no-agent             no agent in this process: run \`vaquero agent --model-dir <state>/store\` beside it
                         (the lab does, so that the agent can be killed and restarted on its own)

  TEMPORAL_ADDRESS       use this Temporal instead of starting a dev server
`;

export interface StandaloneOptions {
  sot: string;
  bootInterface: string;
  site: string;
  state: string;
  files: string;
  tftpRoot: string;
  apiPort: number;
  temporalPort: number;
  uiPort: number;
  /** An existing Temporal; none: a dev server is started. */
  temporalAddress?: string;
  temporalBin: string;
  /** Run the site agent in this process (default); false: only Temporal and the server. */
  agent: boolean;
}

function portArg(value: string | undefined, fallback: number, what: string): number {
  if (value === undefined) return fallback;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new CliError(`${what} must be a port number`);
  return port;
}

async function onlySite(sot: string): Promise<string> {
  const result = await validateSot(sot);
  if (!result.model) {
    const first = result.diagnostics[0];
    throw new CliError(
      `${sot} is not a valid SoT (vaquero validate ${sot}): ${first ? first.message : 'invalid'}`,
    );
  }
  const sites = Object.keys(result.model.sites);
  if (sites.length !== 1) throw new CliError(`${sot} has ${sites.length} sites; name one with --site`);
  return sites[0] as string;
}

export async function standaloneOptions(
  args: string[],
  env: Readonly<Record<string, string | undefined>>,
): Promise<StandaloneOptions | undefined> {
  const { values } = parseArgs({
    args,
    options: {
      sot: { type: 'string' },
      interface: { type: 'string' },
      site: { type: 'string' },
      state: { type: 'string' },
      files: { type: 'string' },
      'tftp-root': { type: 'string' },
      'api-port': { type: 'string' },
      'temporal-port': { type: 'string' },
      'ui-port': { type: 'string' },
      'no-agent': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return undefined;
  if (!values.sot || (!values.interface && !values['no-agent']))
    throw new CliError(`--sot and --interface are required\n${USAGE}`);
  const sot = path.resolve(values.sot);
  const state = path.resolve(values.state ?? '.vaquero/standalone');
  const cache = env.VAQUERO_CACHE ?? '/var/cache/vaquero';
  const labTftp = path.join(cache, 'lab/tftp');
  return {
    sot,
    bootInterface: values.interface ?? '',
    site: values.site ?? (await onlySite(sot)),
    state,
    files: path.resolve(values.files ?? path.join(state, 'files')),
    tftpRoot: values['tftp-root'] ?? (existsSync(labTftp) ? labTftp : '/usr/lib/ipxe'),
    apiPort: portArg(values['api-port'], 8081, '--api-port'),
    temporalPort: portArg(values['temporal-port'], 7233, '--temporal-port'),
    uiPort: portArg(values['ui-port'], 8233, '--ui-port'),
    temporalAddress: env.TEMPORAL_ADDRESS,
    temporalBin: path.join(cache, 'bin/temporal'),
    agent: !values['no-agent'],
  };
}

/** Starts `temporal server start-dev` with its database in the state directory; resolves when it answers. */
async function startTemporal(
  opts: StandaloneOptions,
  io: Io,
): Promise<{ address: string; child: ChildProcess }> {
  if (!existsSync(opts.temporalBin))
    throw new CliError(
      `no Temporal CLI at ${opts.temporalBin} (bash scripts/install-deps.sh), or set TEMPORAL_ADDRESS`,
    );
  const address = `127.0.0.1:${opts.temporalPort}`;
  const logFile = await open(path.join(opts.state, 'temporal.log'), 'a');
  const searchAttributes = ['VaqueroSite', 'VaqueroCommit', 'VaqueroPhase', 'VaqueroHostGroup'].flatMap(
    (name) => ['--search-attribute', `${name}=Keyword`],
  );
  const child = spawn(
    opts.temporalBin,
    [
      ...['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(opts.temporalPort)],
      ...['--ui-port', String(opts.uiPort), '--db-filename', path.join(opts.state, 'temporal.db')],
      ...['--log-level', 'warn', ...searchAttributes],
    ],
    { stdio: ['ignore', logFile.fd, logFile.fd] },
  );
  await logFile.close();
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) =>
      reject(
        new CliError(`Temporal dev server exited (${code}); see ${path.join(opts.state, 'temporal.log')}`),
      ),
    ),
  );
  exited.catch(() => undefined);
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const connection = await Promise.race([
        Connection.connect({ address, connectTimeout: '2 seconds' }),
        exited,
      ]);
      await connection.close();
      break;
    } catch (err) {
      if (err instanceof CliError) throw err;
      if (Date.now() > deadline) {
        child.kill('SIGTERM');
        throw new CliError(`Temporal dev server did not answer on ${address} within 60 s`);
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
  io.out(`Temporal dev server on ${address}, UI http://127.0.0.1:${opts.uiPort}\n`);
  return { address, child };
}

export interface RunningStandalone {
  temporalAddress: string;
  apiUrl: string;
  apiToken: string;
  stop(): Promise<void>;
}

export async function startStandalone(opts: StandaloneOptions, io: Io): Promise<RunningStandalone> {
  await mkdir(opts.state, { recursive: true });
  await mkdir(opts.files, { recursive: true });
  const stops: (() => Promise<unknown>)[] = [];
  const stop = async () => {
    for (const fn of stops.splice(0).reverse()) await fn().catch(() => undefined);
  };
  try {
    let temporalAddress = opts.temporalAddress;
    if (!temporalAddress) {
      const temporal = await startTemporal(opts, io);
      temporalAddress = temporal.address;
      stops.push(async () => {
        const gone = new Promise((resolve) => temporal.child.once('exit', resolve));
        temporal.child.kill('SIGTERM');
        await gone;
      });
    }
    const apiToken = randomBytes(24).toString('hex');
    const agentToken = randomBytes(24).toString('hex');
    const config = parseServerConfig({
      listen: { host: '127.0.0.1', port: opts.apiPort },
      temporal: { address: temporalAddress },
      store: { dir: path.join(opts.state, 'store') },
      sources: [{ kind: 'local', name: 'sot', dir: opts.sot, poll_seconds: 2 }],
      api: { tokens: [{ name: 'standalone', token: { env: 'VAQUERO_STANDALONE_API_TOKEN' } }] },
      // Agents beside this process (`vaquero agent --server`, the lab's two) share the site's arms
      // and power claims through the agent API; one fed by --model-dir keeps them on its own disk.
      agents: {
        tokens: [
          { site: opts.site, name: 'standalone-agents', token: { env: 'VAQUERO_STANDALONE_AGENT_TOKEN' } },
        ],
      },
    });
    const { startServer } = await import('../server/main');
    const server = await startServer(config, {
      env: { VAQUERO_STANDALONE_API_TOKEN: apiToken, VAQUERO_STANDALONE_AGENT_TOKEN: agentToken },
      // One process owns the site: a restart with a new release is the upgrade (upgrades.md).
      deployment: { makeCurrent: true },
    });
    stops.push(() => server.stop());

    if (opts.agent) {
      const { startAgent } = await import('../agent/main');
      const agentConfig = AgentConfigSchema.parse({
        site: opts.site,
        stateDir: path.join(opts.state, 'agent'),
        temporalAddress,
        namespace: 'default',
        modelDir: path.join(opts.state, 'store'),
        modelPollMs: 1000,
        bootInterface: opts.bootInterface,
        routerAdvertisements: true,
        tftpRoot: opts.tftpRoot,
        filesDir: opts.files,
      });
      const agent = await startAgent(agentConfig);
      stops.push(() => agent.stop());
    }
    io.out(
      opts.agent
        ? `server API ${server.url} (token in ${path.join(opts.state, 'api-token')}), agent on ${opts.bootInterface}\n`
        : `server API ${server.url} (token in ${path.join(opts.state, 'api-token')}); model store ${path.join(opts.state, 'store')} for the agent\n`,
    );
    for (const [file, token] of [
      ['api-token', apiToken],
      ['agent-token', agentToken],
    ] as const) {
      const handle = await open(path.join(opts.state, file), 'w', 0o600);
      await handle.write(`${token}\n`);
      await handle.close();
    }
    return { temporalAddress, apiUrl: server.url, apiToken, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

export async function standaloneCommand(args: string[], io: Io): Promise<number> {
  const opts = await standaloneOptions(args, process.env);
  if (!opts) {
    io.out(USAGE);
    return 0;
  }
  const running = await startStandalone(opts, io);
  io.out(`standalone: site ${opts.site}, SoT ${opts.sot}; Ctrl-C stops it\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  io.out('standalone: stopping\n');
  await running.stop();
  return 0;
}
