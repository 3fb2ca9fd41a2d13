// Issue 15, item 3: the operator's Updates work the same across a rollout's continue-as-new, and one
// that arrives while a run hands over is not lost: its effect is carried into the next run.
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import {
  applyWorkflowId,
  rolloutWorkflowId,
  SERVER_TASK_QUEUE,
  type RolloutStatus,
  type SiteRolloutResult,
} from '../../schemas/rollout';
import { pauseUpdate, resumeUpdate, retryHostUpdate, statusQuery } from '../../workflows/messages';
import { startVaquero, type VaqueroEnv } from '../helpers/vaquero-env';

const fixture = fileURLToPath(new URL('../fixtures/sot-sim', import.meta.url));
const HOSTS = Array.from({ length: 12 }, (_, i) => `wk-${String(i + 1).padStart(2, '0')}`);
const LIMIT = 40;
const timeouts = { dhcp: 1_500, ipxe: 5_000, kernel: 5_000, checkpoint: 10_000 };

async function until<T>(what: string, probe: () => Promise<T | undefined>, tries = 600): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    await delay(20);
  }
  throw new Error(`never happened: ${what}`);
}

/** Twelve workers, two at a time, after a canary of one (as rollout-continue-as-new.test.ts). */
async function twelveHostSite(env: VaqueroEnv): Promise<void> {
  for (const file of ['workflows/control.yaml', 'workflows/edge.yaml', 'sites/sim1/hosts/control.yaml'])
    await rm(path.join(env.sot, file));
  await rm(path.join(env.sot, 'sites/sim1/hosts/edge.yaml'));
  await writeFile(
    path.join(env.sot, 'workflows/workers.yaml'),
    'id: workers\nboots: [sim-node]\nrollout: { max_concurrent: 2, max_fail: 2 }\n',
  );
  const hosts = HOSTS.map(
    (name, i) =>
      `name: ${name}\ngroup: workers\ninterfaces:\n  - mac: "52:54:00:99:01:${(i + 16).toString(16)}"\n` +
      `    subnet: sim1-prov\n    ipv4: 10.99.0.${40 + i}\nbmc: { type: sim, boot_delay: 150s }\n`,
  );
  await writeFile(path.join(env.sot, 'sites/sim1/hosts/workers.yaml'), hosts.join('---\n'));
}

test('Updates across continue-as-new: one sent while a run hands over is carried, later runs answer the same', async (t) => {
  const env = await startVaquero(t, { fixture, sites: ['sim1'], simTimeScale: 0.005, planPartHosts: 5 });
  if (!env) return;
  await twelveHostSite(env);
  const sha = await env.commit('twelve workers');
  const id = rolloutWorkflowId('sim1', sha);
  const handle = env.client.workflow.getHandle(id);
  const status = (): Promise<RolloutStatus> => handle.query(statusQuery);
  env.fault('sim1/wk-03', 'dhcp');
  await env.client.workflow.execute('applyCommitWorkflow', {
    taskQueue: SERVER_TASK_QUEUE,
    workflowId: applyWorkflowId(sha),
    args: [{ commit: sha, source: env.sot, timeouts, rolloutHistoryLimit: LIMIT }],
  });

  await until('the first switch begins', async () => ((await status()).switching ? true : undefined));
  const paused = await handle.executeUpdate(pauseUpdate);
  assert.equal(paused.run, 1, 'answered by the run that hands over');
  assert.equal(paused.phase, 'paused');
  const second = await until('the second run', async () => {
    const s = await status();
    return s.run === 2 ? s : undefined;
  });
  assert.equal(second.phase, 'paused', 'the pause is in the carry');
  const refused = await handle.executeUpdate(pauseUpdate).catch((e: unknown) => e);
  assert.ok(refused instanceof WorkflowUpdateFailedError);
  assert.equal(refused.cause?.message, 'the rollout is already paused', 'the next run knows it');

  await until('hosts in flight at the switch ended', async () =>
    (await status()).counts.running === 0 ? true : undefined,
  );
  const pending = await handle.executeUpdate(retryHostUpdate, { args: ['wk-12'] }).catch((e: unknown) => e);
  assert.ok(pending instanceof WorkflowUpdateFailedError);
  assert.equal(
    pending.cause?.message,
    'host wk-12 is pending, not failed: retry-host retries failed hosts only',
  );

  env.fault('sim1/wk-03', undefined);
  const retried = await handle.executeUpdate(retryHostUpdate, { args: ['wk-03'] });
  assert.equal(retried.run, 2);
  assert.equal(retried.counts.failed, 1, 'still failed until its retry starts');
  const resumed = await handle.executeUpdate(resumeUpdate);
  assert.equal(resumed.phase, 'running');

  // Commands keep coming while later runs hand over: each is answered, none is lost.
  let answered = 0;
  const third = until('a third run', async () => ((await status()).run! >= 3 ? true : undefined));
  let done = false;
  void third.then(() => (done = true));
  while (!done) {
    const answer = await handle.executeUpdate(retryHostUpdate, { args: ['wk-12'] }).catch((e: unknown) => e);
    assert.ok(answer instanceof WorkflowUpdateFailedError, String(answer));
    assert.match(answer.cause?.message ?? '', /^host wk-12 is \w+/);
    answered += 1;
  }
  await third;
  assert.ok(answered > 0);
  t.diagnostic(`${answered} retry-host Updates answered while runs 2 to 3 handed over`);

  const result = (await handle.result()) as SiteRolloutResult;
  assert.equal(result.phase, 'completed');
  assert.deepEqual(result.failed, [], 'the retry carried across the switches succeeded');
  assert.deepEqual([...result.succeeded!].sort(), HOSTS);
});
