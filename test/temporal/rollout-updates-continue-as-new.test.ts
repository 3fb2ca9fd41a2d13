// Issue 15, item 3: the operator's Updates work the same across a rollout's continue-as-new, and one
// that arrives while a run hands over is not lost: its effect is carried into the next run.
import assert from 'node:assert/strict';
import { test } from 'node:test';
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
import { TWELVE_WORKERS, twelveHostSite, until } from '../helpers/twelve-workers';
import { startVaquero } from '../helpers/vaquero-env';

const fixture = fileURLToPath(new URL('../fixtures/sot-sim', import.meta.url));
const HOSTS = TWELVE_WORKERS;
const LIMIT = 40;
const timeouts = { dhcp: 1_500, ipxe: 5_000, kernel: 5_000, checkpoint: 10_000 };

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
  // Hosts started by activity leave a switch only the starts in flight to wait for: the Update
  // lands in the run that hands over, or already in the next one; either way it must hold there.
  assert.ok(paused.run === 1 || paused.run === 2, `answered by run ${paused.run}`);
  t.diagnostic(`the pause sent during the first switch was answered by run ${paused.run}`);
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
  // Paused, the run still follows its hosts in flight, and may hand over again meanwhile.
  assert.ok(retried.run! >= 2, `answered by run ${retried.run}`);
  assert.equal(retried.counts.failed, 1, 'still failed until its retry starts');
  const resumed = await handle.executeUpdate(resumeUpdate);
  assert.equal(resumed.phase, 'running');

  // Commands keep coming while later runs hand over: each is answered, none is lost.
  let answered = 0;
  const later = retried.run! + 1;
  const third = until('a later run', async () => ((await status()).run! >= later ? true : undefined));
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
  t.diagnostic(`${answered} retry-host Updates answered while runs ${later - 1} to ${later} handed over`);

  const result = (await handle.result()) as SiteRolloutResult;
  assert.equal(result.phase, 'completed');
  assert.deepEqual(result.failed, [], 'the retry carried across the switches succeeded');
  assert.deepEqual([...result.succeeded!].sort(), HOSTS);
});
