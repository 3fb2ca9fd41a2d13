// The real `vaquero server` process for tests: a YAML config written beside it, secrets in its
// environment, started on a free port, resolved once it logs the URL it listens on.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Connection } from '@temporalio/client';
import { temporalAddress } from './temporal';

const bin = fileURLToPath(new URL('../../bin/vaquero.mjs', import.meta.url));

export interface ServerProcess {
  url: string;
  /** What it printed since it started listening (unless `quiet`). */
  output: () => string;
  /** SIGTERM; resolves with the exit code. */
  stop: () => Promise<number | null>;
}

/**
 * Starts `vaquero server` in `dir` with these config lines after `listen`, `temporal` and `store`
 * (the test namespace, a store in `dir/store`). `quiet` drops the output once it listens: a test that
 * sends thousands of requests does not keep their log lines.
 */
export async function startServerProcess(
  dir: string,
  configLines: string[],
  env: Record<string, string>,
  options: { quiet?: boolean } = {},
): Promise<ServerProcess> {
  await mkdir(dir, { recursive: true });
  const config = path.join(dir, 'server.yaml');
  const namespace = process.env.VAQUERO_TEST_NAMESPACE ?? 'vaquero-test';
  await writeFile(
    config,
    [
      'listen: { host: 127.0.0.1, port: 0 }',
      `temporal: { address: '${temporalAddress()}', namespace: ${namespace} }`,
      `store: { dir: ${path.join(dir, 'store')} }`,
      ...configLines,
      '',
    ].join('\n'),
  );
  const child = spawn(process.execPath, [bin, 'server', '--config', config], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let listening = false;
  const keep = (d: Buffer) => {
    if (!(listening && options.quiet)) out += d.toString();
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  let url: string | undefined;
  for (let i = 0; i < 1200 && !url; i++) {
    await new Promise((r) => setTimeout(r, 100));
    url = /"url":"(http:[^"]+)"/.exec(out)?.[1];
  }
  if (!url) {
    child.kill('SIGKILL');
    assert.fail(`the server did not start:\n${out}`);
  }
  listening = true;
  if (options.quiet) out = '';
  return { url, output: () => out, stop: () => (child.kill('SIGTERM'), exited) };
}

/** Whether a Temporal server answers; in CI, which must run one, its absence fails the suite. */
export async function temporalUp(): Promise<boolean> {
  try {
    const connection = await Connection.connect({ address: temporalAddress(), connectTimeout: '5 seconds' });
    await connection.close();
    return true;
  } catch (err) {
    if (process.env.CI && process.env.CI !== 'false') throw err;
    return false;
  }
}
