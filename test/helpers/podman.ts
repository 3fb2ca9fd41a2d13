// The container jobs' image for tests: built by scripts/install-job-image.sh (a busybox root
// imported into podman, no registry), and the podman configuration that script wrote where podman's
// defaults cannot run a container here, set in this process's environment (which agents and job
// runners hand to the podman CLI).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const script = fileURLToPath(new URL('../../scripts/install-job-image.sh', import.meta.url));

/** The image's name, or undefined (the test skipped) where podman is not installed. */
export async function podmanJobImage(t: TestContext): Promise<string | undefined> {
  const found = await run('podman', ['--version']).then(
    () => true,
    () => false,
  );
  if (!found) {
    t.skip('podman is not installed (scripts/install-deps.sh installs it)');
    return undefined;
  }
  const { stdout } = await run('bash', [script], { timeout: 300_000 });
  const conf = path.join(process.env.VAQUERO_CACHE ?? '/var/cache/vaquero', 'podman/containers.conf');
  if (existsSync(conf)) process.env.CONTAINERS_CONF = conf;
  return stdout.trim().split('\n').at(-1);
}
