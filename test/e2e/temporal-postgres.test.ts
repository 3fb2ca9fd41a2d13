// The production engine: temporal-server built from the Go module proxy, on PostgreSQL (what
// docker-compose.yml runs), started by scripts/temporal-pg.sh. A 20-host sim rollout runs on it as
// on the dev server: search attributes, child workflows, signals and queries on the SQL stores.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { access, chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { applyWorkflowId, SERVER_TASK_QUEUE, type SiteRolloutResult } from '../../schemas/rollout';
import type { ApplyCommitResult } from '../../workflows/apply-commit';
import { launchVaquero, type RunningVaquero } from '../helpers/vaquero-env';
import { repoRoot } from '../helpers/sot';

const run = promisify(execFile);
const fixture = fileURLToPath(new URL('../fixtures/sot-sim', import.meta.url));
const FAST = { dhcp: 5_000, ipxe: 5_000, kernel: 5_000, checkpoint: 5_000 };
const PORT = Number(process.env.VAQUERO_TEST_PG_TEMPORAL_PORT ?? 7433);
const cache = process.env.VAQUERO_CACHE ?? '/var/cache/vaquero';
const serverBin = path.join(
  cache,
  `temporal-server-${process.env.TEMPORAL_SERVER_VERSION ?? '1.32.2'}`,
  'temporal-server',
);

test('a 20-host rollout completes on temporal-server with PostgreSQL', { timeout: 600_000 }, async (t) => {
  const ci = process.env.CI && process.env.CI !== 'false';
  const missing = await access(serverBin).then(
    () => undefined,
    () => `no ${serverBin} (bash scripts/install-deps.sh builds it)`,
  );
  const reason =
    missing ?? (process.getuid?.() === 0 ? undefined : 'needs root (PostgreSQL runs as postgres)');
  if (reason) {
    if (ci) throw new Error(`${reason}; CI must run this test`);
    t.skip(reason);
    return;
  }
  const state = await mkdtemp(path.join(tmpdir(), 'vaquero-temporal-pg-'));
  // PostgreSQL runs as the postgres user, which must reach its data directory inside.
  await chmod(state, 0o755);
  const env = { ...process.env, TEMPORAL_PORT: String(PORT), VAQUERO_STATE: state };
  const script = path.join(repoRoot, 'scripts/temporal-pg.sh');
  const running: { vaquero?: RunningVaquero } = {};
  // One hook, in this order: the workers stop before the server they poll.
  t.after(async () => {
    await running.vaquero?.close();
    await run('bash', [script, 'stop', '--purge'], { env, timeout: 120_000 }).catch(() => undefined);
    await rm(state, { recursive: true, force: true });
  });
  const started = Date.now();
  await run('bash', [script, 'start'], { env, timeout: 300_000 });
  t.diagnostic(`temporal-server on PostgreSQL ready in ${Date.now() - started} ms`);

  const vaquero = await launchVaquero({
    fixture,
    sites: ['sim1'],
    simTimeScale: 0.005,
    address: `127.0.0.1:${PORT}`,
    namespace: 'default',
  });
  running.vaquero = vaquero;
  const sha = await vaquero.commit('first');
  const apply = await vaquero.client.workflow.start('applyCommitWorkflow', {
    taskQueue: SERVER_TASK_QUEUE,
    workflowId: applyWorkflowId(sha),
    args: [{ commit: sha, source: vaquero.sot, timeouts: FAST }],
  });
  const applied = (await apply.result()) as ApplyCommitResult;
  const rollout = applied.rollouts[0];
  assert.ok(rollout, 'the apply started a rollout');
  const result = (await vaquero.client.workflow.getHandle(rollout.workflowId).result()) as SiteRolloutResult;
  assert.equal(result.phase, 'completed');
  assert.equal(result.succeeded!.length, 20, JSON.stringify(result));
  const cycles = await vaquero.cycles();
  assert.equal(cycles.size, 20);
  assert.ok(
    [...cycles.values()].every((n) => n === 1),
    'every host power-cycled exactly once',
  );
  // The SQL visibility store answers the search-attribute queries `vaquero rollout list` makes.
  const listed: string[] = [];
  for await (const wf of vaquero.client.workflow.list({ query: `VaqueroSite = 'sim1'` }))
    listed.push(wf.workflowId);
  assert.ok(listed.includes(rollout.workflowId), `listed by VaqueroSite: ${listed.join(', ')}`);
});
