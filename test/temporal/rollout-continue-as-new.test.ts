// Issue 12, item 1: a site rollout's history does not grow with its hosts. With a small history limit
// the rollout continues as new several times; hosts in flight at a switch are followed by the next
// run, and the operator's signals (pause during a switch, resume, retry-host, supersede) and the
// status query work the same across the switches.
import assert from 'node:assert/strict';
import { appendFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import {
  applyWorkflowId,
  hostWorkflowId,
  rolloutWorkflowId,
  SERVER_TASK_QUEUE,
  type RolloutStatus,
  type SiteRolloutInput,
  type SiteRolloutResult,
} from '../../schemas/rollout';
import { statusQuery } from '../../workflows/messages';
import { TWELVE_WORKERS, twelveHostSite, until } from '../helpers/twelve-workers';
import { startVaquero, type VaqueroEnv } from '../helpers/vaquero-env';

/** The decoded arguments the run started with (JSON payloads). */
function startInput(history: { events?: { workflowExecutionStartedEventAttributes?: unknown }[] | null }) {
  const attrs = history.events?.[0]?.workflowExecutionStartedEventAttributes as
    { input?: { payloads?: { data?: Uint8Array | null }[] | null } | null } | undefined;
  return (attrs?.input?.payloads ?? []).map(
    (p) => JSON.parse(Buffer.from(p.data ?? []).toString('utf8')) as unknown,
  );
}

const fixture = fileURLToPath(new URL('../fixtures/sot-sim', import.meta.url));
const HOSTS = TWELVE_WORKERS;
const LIMIT = 40;
const timeouts = { dhcp: 1_500, ipxe: 5_000, kernel: 5_000, checkpoint: 10_000 };

async function apply(env: VaqueroEnv, commit: string): Promise<void> {
  await env.client.workflow.execute('applyCommitWorkflow', {
    taskQueue: SERVER_TASK_QUEUE,
    workflowId: applyWorkflowId(commit),
    args: [{ commit, source: env.sot, timeouts, rolloutHistoryLimit: LIMIT }],
  });
}

test('a rollout continues as new past its history limit; signals and status work across', async (t) => {
  // Parts of five hosts: each run reads its stored plan in three parts.
  const env = await startVaquero(t, { fixture, sites: ['sim1'], simTimeScale: 0.005, planPartHosts: 5 });
  if (!env) return;
  await twelveHostSite(env);
  const sha = await env.commit('twelve workers');
  const id = rolloutWorkflowId('sim1', sha);
  const status = (): Promise<RolloutStatus> => env.client.workflow.getHandle(id).query(statusQuery);
  const signal = (name: string, input?: string) =>
    env.cli('workflow', 'signal', '--workflow-id', id, '--name', name, ...(input ? ['--input', input] : []));
  env.fault('sim1/wk-03', 'dhcp');
  await apply(env, sha);

  const before = await status();
  assert.equal(before.run, 1);
  assert.equal(before.counts.total, 12);
  // Paged: counts cover every host, `hosts` only the page asked for.
  const page = await env.client.workflow.getHandle(id).query(statusQuery, { offset: 10, limit: 5 });
  assert.deepEqual(Object.keys(page.hosts), ['wk-11', 'wk-12']);
  assert.deepEqual(page.page, { offset: 10, limit: 5, total: 12 });
  assert.equal(page.counts.total, 12);
  const one = await env.client.workflow.getHandle(id).query(statusQuery, { host: 'wk-07' });
  assert.deepEqual(Object.keys(one.hosts), ['wk-07']);

  // Pause while the first run hands over: the next run starts paused, the hosts in flight finish.
  await until('the first switch begins', async () => ((await status()).switching ? true : undefined));
  await signal('pause');
  const second = await until('the second run', async () => {
    const s = await status();
    return s.run === 2 ? s : undefined;
  });
  assert.equal(second.phase, 'paused');
  assert.equal(second.counts.total, 12);
  const idle = await until('hosts in flight at the switch ended', async () => {
    const s = await status();
    // A run that has not read its stored plan yet counts no host at all: not an answer.
    return s.counts.total === 12 && s.counts.running === 0 ? s : undefined;
  });
  assert.equal(idle.hosts['wk-03']?.state, 'failed', 'the failed host of the first run is carried');
  // Paused, the run may still hand over (its followers' calls grow its history); a run that has
  // not read its stored plan yet lists no host, so ask until one has.
  const failed = await until('the failed host listed by state', async () => {
    const s = await env.client.workflow.getHandle(id).query(statusQuery, { state: 'failed' });
    return Object.keys(s.hosts).length > 0 ? s : undefined;
  });
  assert.deepEqual(Object.keys(failed.hosts), ['wk-03']);
  assert.equal(failed.page?.total, 1);
  await delay(1_000);
  assert.equal((await status()).counts.pending, idle.counts.pending, 'no host starts while paused');

  env.fault('sim1/wk-03', undefined);
  await signal('retry-host', '"wk-03"');
  await signal('resume');
  await until('a third run', async () => ((await status()).run! >= 3 ? true : undefined));
  assert.notEqual((await status()).hosts['wk-03']?.state, 'failed');

  // Supersede mid-way: a newer commit changes every host; this rollout finishes its hosts in flight.
  await appendFile(path.join(env.sot, 'assets/ignition/sim.ign.j2'), '\n');
  const newer = await env.commit('newer ignition');
  await apply(env, newer);
  const result = (await env.client.workflow.getHandle(id).result()) as SiteRolloutResult;
  assert.equal(result.phase, 'superseded');
  assert.ok(result.succeeded!.includes('wk-03'), 'the retried host counts');
  assert.deepEqual(result.failed, [], JSON.stringify(result));
  assert.deepEqual([...result.succeeded!, ...result.remaining!].sort(), HOSTS);
  assert.ok(result.remaining!.length > 0, 'the supersede came mid-way');
  for (const host of result.succeeded!) {
    const attempt = host === 'wk-03' ? 2 : 1;
    const d = await env.client.workflow.getHandle(hostWorkflowId('sim1', host, sha, attempt)).describe();
    assert.equal(d.status.name, 'COMPLETED', `${host} ran to its end across the switches`);
  }

  const runs = [];
  for await (const run of env.client.workflow.list({ query: `WorkflowId = "${id}"` })) runs.push(run);
  assert.ok(runs.length >= 3, `at least two continue-as-new boundaries (${runs.length} runs)`);
  for (const run of runs) {
    const history = await env.client.workflow.getHandle(id, run.runId).fetchHistory();
    assert.ok(
      (history.events?.length ?? 0) <= LIMIT * 3,
      `run ${run.runId}: ${history.events?.length} events`,
    );
    // Plans by reference: the input names the stored plan, a carry holds one character per host.
    const [input] = startInput(history) as [SiteRolloutInput];
    assert.equal(input.plan, undefined, 'no plan in the input');
    assert.match(input.planKey ?? '', new RegExp(`^${sha}/sim1$`));
    if (input.carry) {
      assert.equal(input.carry.hosts, undefined, 'no host records in the carry');
      assert.equal(input.carry.states?.length, 12);
    }
    const parts = (history.events ?? []).filter((e) => e.markerRecordedEventAttributes).length;
    assert.ok(parts >= 3, `run ${run.runId} read its plan in parts (${parts} markers)`);
  }
  const next = (await env.client.workflow
    .getHandle(rolloutWorkflowId('sim1', newer))
    .result()) as SiteRolloutResult;
  assert.equal(next.phase, 'completed');
  assert.ok(
    result.remaining!.every((h) => next.succeeded!.includes(h)),
    'the newer rollout took them over',
  );
});
