// The twelve-worker sim site of the continue-as-new tests, and their polling wait.
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { VaqueroEnv } from './vaquero-env';

export const TWELVE_WORKERS = Array.from({ length: 12 }, (_, i) => `wk-${String(i + 1).padStart(2, '0')}`);

/** Twelve workers, two at a time, after a canary of one; each boots in about a second at scale 0.005. */
export async function twelveHostSite(env: VaqueroEnv): Promise<void> {
  for (const file of ['workflows/control.yaml', 'workflows/edge.yaml', 'sites/sim1/hosts/control.yaml'])
    await rm(path.join(env.sot, file));
  await rm(path.join(env.sot, 'sites/sim1/hosts/edge.yaml'));
  await writeFile(
    path.join(env.sot, 'workflows/workers.yaml'),
    'id: workers\nboots: [sim-node]\nrollout: { max_concurrent: 2, max_fail: 2 }\n',
  );
  const hosts = TWELVE_WORKERS.map(
    (name, i) =>
      `name: ${name}\ngroup: workers\ninterfaces:\n  - mac: "52:54:00:99:01:${(i + 16).toString(16)}"\n` +
      `    subnet: sim1-prov\n    ipv4: 10.99.0.${40 + i}\nbmc: { type: sim, boot_delay: 150s }\n`,
  );
  await writeFile(path.join(env.sot, 'sites/sim1/hosts/workers.yaml'), hosts.join('---\n'));
}

/** Polls `probe` every 20 ms until it gives a value (errors count as none). */
export async function until<T>(what: string, probe: () => Promise<T | undefined>, tries = 600): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    await delay(20);
  }
  throw new Error(`never happened: ${what}`);
}
