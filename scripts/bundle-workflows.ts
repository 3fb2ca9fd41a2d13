// Bundles workflows/ the way a worker does. Lint sees only direct imports; the bundler follows
// every import, so a Node built-in pulled in through a helper fails here, in CI, instead of at
// worker start-up. Production workers can load the bundle instead of bundling at start.
//
//   tsx scripts/bundle-workflows.ts [workflowsPath]   (default workflows/index.ts)
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';

export const defaultWorkflowsPath = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));
export const defaultBundlePath = fileURLToPath(new URL('../.vaquero/workflow-bundle.js', import.meta.url));

/** Resolves with the bundle's code; rejects if any workflow imports a disallowed module. */
export async function bundleWorkflows(workflowsPath: string): Promise<string> {
  const { code } = await bundleWorkflowCode({ workflowsPath, logger: new DefaultLogger('WARN') });
  return code;
}

async function main(workflowsPath = defaultWorkflowsPath): Promise<number> {
  try {
    const code = await bundleWorkflows(workflowsPath);
    await mkdir(dirname(defaultBundlePath), { recursive: true });
    await writeFile(defaultBundlePath, code);
    console.log(`bundle-workflows: wrote ${defaultBundlePath} (${Math.round(code.length / 1024)} KiB)`);
    return 0;
  } catch (err) {
    console.error(`bundle-workflows: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv[2]);
}
