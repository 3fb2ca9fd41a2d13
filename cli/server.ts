// `vaquero server --config <file.yaml>`: reads the config once, here, and runs the server until
// SIGTERM/SIGINT.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError, resolveSecrets } from '../server/config';
import {
  installRuntime,
  loadServerConfig,
  serverLogger,
  startServer,
  type RunningServer,
} from '../server/main';
import { CliError, parse, type Io } from './io';
import { deploymentVersion, SERVER_DEPLOYMENT, type DeploymentVersion } from '../activities/build-id';

const stopSignals = ['SIGINT', 'SIGTERM'] as const;

const USAGE = `usage: vaquero server --config <file.yaml> [--deployment <name>] [--build-id <id>] [--make-current]
  --deployment <name>  Temporal worker deployment ($VAQUERO_DEPLOYMENT, ${SERVER_DEPLOYMENT})
  --build-id <id>      this version's build id ($VAQUERO_BUILD_ID, the package version + git commit)
  --make-current       route new and auto-upgrade workflows to this version at once
                       (docs/operations/upgrades.md: else \`temporal worker deployment set-current-version\`)`;

/** The worker deployment version from the flags, else the environment, else the defaults. */
function versionFrom(values: { deployment?: string; 'build-id'?: string }): DeploymentVersion {
  try {
    return deploymentVersion(
      values.deployment ?? process.env.VAQUERO_DEPLOYMENT ?? SERVER_DEPLOYMENT,
      values['build-id'] ?? process.env.VAQUERO_BUILD_ID,
    );
  } catch (err) {
    throw new CliError(`${(err as Error).message}\n${USAGE}`);
  }
}

/** `vaquero server --config <file>`: runs until SIGTERM/SIGINT; a bad config is exit code 2. */
export async function serverCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(args, {
    config: { type: 'string', short: 'c' },
    deployment: { type: 'string' },
    'build-id': { type: 'string' },
    'make-current': { type: 'boolean' },
  });
  if (!values.config || positionals.length > 0) throw new CliError(USAGE);
  const version = versionFrom(values);
  let server: RunningServer;
  try {
    const config = await loadServerConfig(path.resolve(io.cwd(), values.config));
    const secrets = await resolveSecrets(config, {
      env: process.env,
      readFile: (f) => readFile(f, 'utf8'),
    });
    const log = serverLogger();
    installRuntime(log);
    server = await startServer(config, {
      log,
      secrets,
      deployment: { version, makeCurrent: values['make-current'] ?? false },
    });
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(err.message);
    throw new CliError(`cannot start: ${(err as Error).message}`, 1);
  }
  let onSignal = () => {};
  const signalled = new Promise<void>((resolve) => (onSignal = resolve));
  for (const s of stopSignals) process.once(s, onSignal);
  try {
    await Promise.race([signalled, server.done]);
  } catch (err) {
    await server.stop();
    throw new CliError(`the worker stopped: ${(err as Error).message}`, 1);
  } finally {
    for (const s of stopSignals) process.off(s, onSignal);
  }
  await server.stop();
  return 0;
}
