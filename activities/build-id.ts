// Which Vaquero a worker runs: the Temporal worker deployment version (docs/operations/upgrades.md).
// The server's workers are versioned (workflow tasks go by version); the agents run activities only
// and report their build id without versioning (design.md, "Versions of the workers").
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The worker deployment of `vaquero server` workers (the `vaquero-server` task queue). */
export const SERVER_DEPLOYMENT = 'vaquero-server';
/** The deployment name `vaquero agent` reports (its workers are not versioned). */
export const AGENT_DEPLOYMENT = 'vaquero-agent';

export interface DeploymentVersion {
  deploymentName: string;
  buildId: string;
}

/** Temporal refuses a '.' in a deployment name. */
export const DEPLOYMENT_NAME = /^[A-Za-z0-9_-]{1,100}$/;
export const BUILD_ID = /^[A-Za-z0-9_.+-]{1,200}$/;

const repoDir = fileURLToPath(new URL('..', import.meta.url));

/** The commit of this checkout: $VAQUERO_COMMIT (set in images built without .git), else git, else `unknown`. */
function commitOf(env: Readonly<Record<string, string | undefined>>): string {
  const fromEnv = env.VAQUERO_COMMIT?.trim();
  if (fromEnv) return fromEnv;
  try {
    return execFileSync('git', ['-C', repoDir, 'rev-parse', '--short=12', 'HEAD'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return 'unknown';
  }
}

/** The package version plus the git commit, e.g. `0.1.0+1a2b3c4d5e6f`. */
export function defaultBuildId(env: Readonly<Record<string, string | undefined>> = process.env): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return `${pkg.version}+${commitOf(env)}`;
}

/**
 * A deployment version from flags (or their defaults), checked the way Temporal would, so a bad one
 * is a clear error at start rather than a worker that fails later.
 */
export function deploymentVersion(
  deploymentName: string,
  buildId: string | undefined,
  env: Readonly<Record<string, string | undefined>> = process.env,
): DeploymentVersion {
  const id = buildId ?? defaultBuildId(env);
  if (!DEPLOYMENT_NAME.test(deploymentName))
    throw new Error(
      `deployment ${JSON.stringify(deploymentName)}: letters, digits, '-' and '_' only (Temporal refuses '.'), at most 100`,
    );
  if (!BUILD_ID.test(id))
    throw new Error(
      `build id ${JSON.stringify(id)}: letters, digits, '.', '+', '-' and '_' only, 1 to 200 characters`,
    );
  return { deploymentName, buildId: id };
}
