// History events are what a rollout costs Temporal (storage, CPU, the 51,200-event limit), and the
// host workflow holds most of them: a small sim rollout counts them per host, every workflow
// included, and checks that each boot step can still be read in the host's history.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { defaultPayloadConverter } from '@temporalio/common';
import {
  applyWorkflowId,
  SERVER_TASK_QUEUE,
  type BootEventBatch,
  type ReprovisionHostInput,
  type SiteRolloutResult,
} from '../../schemas/rollout';
import { HostGroupAttribute } from '../../schemas/search-attributes';
import type { ApplyCommitResult } from '../../workflows/apply-commit';
import { writeSimSot } from '../helpers/sim-sot';
import { startVaquero } from '../helpers/vaquero-env';

const HOSTS = 6;
/**
 * The host workflow's events on the happy path: 56 before arm and power cycle became one activity,
 * 45 before boot events came in batches (one watchdog timer, the host disarmed by its agent), 20
 * before the host workflow became a type of its own (no patch marker and its search attribute
 * update; the group set by the parent at start), 17 before the host's spec came in its input (no
 * local activity's marker).
 */
const MAX_HOST_EVENTS = 16;

test('a sim rollout: host workflow events per host bounded, every boot step in its history', async (t) => {
  const fixture = await mkdtemp(path.join(tmpdir(), 'vq-history-events-'));
  t.after(() => rm(fixture, { recursive: true, force: true }));
  await writeSimSot(fixture, { site: 'ev', hosts: HOSTS, bootS: 2, maxConcurrent: 3, net: 129 });
  const env = await startVaquero(t, { fixture, sites: ['ev'], simTimeScale: 0.25 });
  if (!env) return;
  const sha = await env.commit('events');
  const apply = await env.client.workflow.start('applyCommitWorkflow', {
    taskQueue: SERVER_TASK_QUEUE,
    workflowId: applyWorkflowId(sha),
    args: [
      {
        commit: sha,
        source: env.sot,
        timeouts: { dhcp: 30_000, ipxe: 30_000, kernel: 30_000, checkpoint: 30_000 },
      },
    ],
  });
  const { rollouts } = (await apply.result()) as ApplyCommitResult;
  const rolloutId = rollouts[0]?.workflowId ?? '';
  const result = (await env.client.workflow.getHandle(rolloutId).result()) as SiteRolloutResult;
  assert.equal(result.succeeded!.length, HOSTS, JSON.stringify(result));

  const historyOf = async (id: string) =>
    (await env.client.workflow.getHandle(id).fetchHistory()).events ?? [];
  let hostEvents = 0;
  for (const host of result.succeeded!) {
    const events = await historyOf(`host/ev/${host}/${sha.slice(0, 7)}`);
    hostEvents += events.length;
    const batches = events
      .map((e) => e.workflowExecutionSignaledEventAttributes)
      .filter((a) => a?.signalName === 'boot-events')
      .map((a) => defaultPayloadConverter.fromPayload<BootEventBatch>(a!.input!.payloads![0]!));
    // Fewer events, not less information: each step once, with the time its agent saw it.
    const steps = batches.flatMap((b) => b.events);
    const said = `${host}: ${JSON.stringify(batches)}`;
    assert.deepEqual(
      steps.map((e) => e.kind),
      ['dhcp', 'ipxe', 'kernel', 'checkpoint'],
      said,
    );
    const times = steps.map((e) => Date.parse(e.at));
    assert.ok(
      times.every((ms, i) => Number.isFinite(ms) && ms >= (times[i - 1] ?? 0)),
      `${said}: the steps' times, in order`,
    );
    assert.equal(batches.at(-1)?.disarmed?.stage, 1, `${said}: disarmed by its agent at the checkpoint`);
    const activities = events
      .map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name)
      .filter(Boolean);
    assert.deepEqual(activities, ['armAndPowerCycle'], host);
    assert.equal(
      events[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name,
      'reprovisionHostWorkflowV2',
    );
    const markers = events.flatMap((e) => e.markerRecordedEventAttributes?.markerName ?? []);
    assert.deepEqual(markers, [], `${host}: no patch marker, no local activity (the spec is in the input)`);
    const input = events[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
    const started = defaultPayloadConverter.fromPayload<ReprovisionHostInput>(input!);
    assert.equal(started.spec?.host, host, `${host}: its spec, given at start`);
    assert.equal(events.filter((e) => e.upsertWorkflowSearchAttributesEventAttributes).length, 0, host);
    const described = await env.client.workflow.getHandle(`host/ev/${host}/${sha.slice(0, 7)}`).describe();
    assert.ok(described.typedSearchAttributes.get(HostGroupAttribute), `${host}: its group, set at start`);
  }
  const all =
    hostEvents + (await historyOf(rolloutId)).length + (await historyOf(applyWorkflowId(sha))).length;
  t.diagnostic(
    `events per host: ${(hostEvents / HOSTS).toFixed(1)} host workflow, ${(all / HOSTS).toFixed(1)} in all`,
  );
  assert.ok(hostEvents / HOSTS <= MAX_HOST_EVENTS, `host workflow events per host: ${hostEvents / HOSTS}`);
});
