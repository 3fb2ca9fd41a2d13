import { Client } from '@temporalio/client';
import {
  cancelHostWorkflows,
  followHosts,
  startHostWorkflows,
  type FollowHostsInput,
} from '../../activities/host-starts';
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { Context } from '@temporalio/activity';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { AgentActivities, PowerCycleInput, PowerCycleResult } from '../../activities/agent-activities';
import type { ServerActivities } from '../../activities/server-activities';
import { WEEKDAYS, type RebootWindow } from '../../schemas/common';
import { SitePlanSchema, type SitePlan } from '../../schemas/plan';
import {
  hostWorkflowId,
  rolloutWorkflowId,
  SERVER_TASK_QUEUE,
  type HostSpec,
  type RolloutStatus,
  type StartHostsInput,
} from '../../schemas/rollout';
import { bootEventSignal, statusQuery } from '../../workflows/messages';
import { inWindow, msUntilOpen } from '../../workflows/reboot-window';
import type { siteRolloutWorkflow } from '../../workflows/site-rollout';
import { timeSkippingEnvOrSkip, withWorkers } from '../helpers/time-skipping';

const at = (iso: string) => Date.parse(iso);
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const windowOf = (w: Partial<RebootWindow> & Pick<RebootWindow, 'start' | 'end'>): RebootWindow => ({
  days: [...WEEKDAYS],
  timezone: 'UTC',
  ...w,
});

/** Sleeps as siteRolloutWorkflow does, checking again on waking; returns when it starts, and its naps. */
function startTime(windows: RebootWindow[], fromMs: number): { atMs: number; naps: number } {
  let now = fromMs;
  let naps = 0;
  for (let wait = msUntilOpen(windows, now); wait > 0; wait = msUntilOpen(windows, now)) {
    now += wait;
    naps += 1;
  }
  return { atMs: now, naps };
}

// 2024-01-15 is a Monday.
describe('reboot windows', () => {
  const night = windowOf({ days: ['mon'], start: '22:00', end: '06:00' });

  test('a window across midnight runs into the next morning, from the day it starts', () => {
    assert.equal(inWindow(night, at('2024-01-15T23:00:00Z')), true);
    assert.equal(
      inWindow(night, at('2024-01-16T05:59:00Z')),
      true,
      'Tuesday morning belongs to Monday night',
    );
    assert.equal(inWindow(night, at('2024-01-16T06:00:00Z')), false, 'the end is exclusive');
    assert.equal(
      inWindow(night, at('2024-01-15T03:00:00Z')),
      false,
      'Monday morning belongs to Sunday night',
    );
    assert.equal(inWindow(night, at('2024-01-16T22:30:00Z')), false, 'Tuesday night is not a window');
    assert.equal(msUntilOpen([night], at('2024-01-16T05:00:00Z')), 0);
    assert.equal(msUntilOpen([night], at('2024-01-16T07:00:00Z')), (6 * 24 + 15) * HOUR);
  });

  test('only the listed days open; the wait counts whole days to the next one', () => {
    const weekend = windowOf({ days: ['sat', 'sun'], start: '01:00', end: '05:00' });
    assert.equal(inWindow(weekend, at('2024-01-20T02:00:00Z')), true);
    assert.equal(inWindow(weekend, at('2024-01-19T02:00:00Z')), false, 'a Friday');
    assert.equal(msUntilOpen([weekend], at('2024-01-17T12:00:00Z')), (2 * 24 + 13) * HOUR);
    assert.equal(
      msUntilOpen([weekend], at('2024-01-21T05:00:00Z')),
      (6 * 24 - 4) * HOUR,
      'after Sunday it is next Saturday',
    );
  });

  test('a window is read on the wall clock of its own time zone', () => {
    const berlin = windowOf({ start: '02:00', end: '04:00', timezone: 'Europe/Berlin' });
    const utc = windowOf({ start: '02:00', end: '04:00' });
    // 01:30 UTC is 02:30 in Berlin in winter (CET, +1) and 03:30 in summer (CEST, +2).
    assert.equal(inWindow(berlin, at('2024-01-15T01:30:00Z')), true);
    assert.equal(inWindow(utc, at('2024-01-15T01:30:00Z')), false);
    assert.equal(inWindow(berlin, at('2024-07-15T01:30:00Z')), true);
    assert.equal(inWindow(berlin, at('2024-07-15T02:30:00Z')), false, '04:30 in Berlin');
    assert.equal(msUntilOpen([berlin], at('2024-01-15T00:00:00Z')), HOUR);
    assert.equal(msUntilOpen([berlin], at('2024-07-15T00:00:00Z')), 0, '02:00 in Berlin');
    assert.equal(msUntilOpen([utc], at('2024-07-15T00:00:00Z')), 2 * HOUR);
    assert.equal(msUntilOpen([berlin, utc], at('2024-01-14T23:00:00Z')), 2 * HOUR, 'the sooner one');
  });

  test('on DST days a host still starts inside its window, and never before it opens', () => {
    // 2024-10-27: Berlin goes back from 03:00 CEST to 02:00 CET; 03:00 CET is 02:00 UTC.
    const three = windowOf({ start: '03:00', end: '04:00', timezone: 'Europe/Berlin' });
    const autumn = startTime([three], at('2024-10-27T00:00:00Z'));
    assert.equal(
      autumn.atMs,
      at('2024-10-27T02:00:00Z'),
      'the wall clock says 03:00 twice; the real opening counts',
    );
    assert.equal(autumn.naps, 2, 'it wakes at 02:00 CET, an hour early, and sleeps again');
    // 2024-03-31: Berlin jumps from 02:00 CET to 03:00 CEST; the wall clock overstates the wait.
    const spring = startTime([windowOf({ ...three, end: '05:00' })], at('2024-03-31T00:00:00Z'));
    assert.ok(spring.atMs >= at('2024-03-31T01:00:00Z'), 'not before 03:00 CEST');
    assert.ok(inWindow(windowOf({ ...three, end: '05:00' }), spring.atMs));
  });

  test('seconds already past in the minute are not waited twice; no windows means no wait', () => {
    const ten = windowOf({ start: '22:00', end: '23:00' });
    assert.equal(msUntilOpen([ten], at('2024-01-15T21:59:30Z')), 30_000);
    assert.equal(msUntilOpen([], at('2024-01-15T21:59:30Z')), 0);
    assert.equal(inWindow(ten, at('2024-01-15T22:00:00Z')), true);
  });
});

const SITE = 'lab';
const GROUP = 'workers';
const COMMIT = '0123456789abcdef0123456789abcdef01234567';
const HOSTS = ['w-01', 'w-02', 'w-03'];
const HELD = 'waiting for its reboot window';
const hhmm = (ms: number) => new Date(ms).toISOString().slice(11, 16);

/** Two waves, a canary then two hosts, of one group whose reboot window is `rebootWindow`. */
function labPlan(rebootWindow: RebootWindow): SitePlan {
  const planned = (host: string) => ({ host, group: GROUP, reasons: ['first deployment'] });
  return SitePlanSchema.parse({
    site: SITE,
    name: SITE,
    approval_required: false,
    canary_size: 1,
    max_fail: 0,
    groups: [
      {
        group: GROUP,
        hosts: 3,
        changed: 3,
        batch: 2,
        max_fail: 0,
        depends_on: [],
        reboot_windows: [rebootWindow],
      },
    ],
    waves: [
      { index: 1, canary: true, groups: [GROUP], hosts: HOSTS.slice(0, 1).map(planned) },
      { index: 2, canary: false, groups: [GROUP], hosts: HOSTS.slice(1).map(planned) },
    ],
    unchanged: [],
    removed: [],
    skipped: [],
  });
}

const macOf = (host: string) => `52:54:00:00:00:0${HOSTS.indexOf(host) + 1}`;

/** What the agent's DHCP, HTTP and checkpoint servers report of a booting host, as `boot-event` signals. */
async function boot(env: TestWorkflowEnvironment, workflowId: string, host: string): Promise<void> {
  const handle = env.client.workflow.getHandle(workflowId);
  const at = new Date(await env.currentTimeMs()).toISOString();
  for (const kind of ['dhcp', 'ipxe', 'checkpoint'] as const) {
    await handle.signal(bootEventSignal, { kind, mac: macOf(host), stage: 1, at });
  }
}

/**
 * The server's and the agent's activities as a lab without machines: the time-skipping server cannot
 * run the real agent. A power cycle is recorded at the server's (skipped) time; the host then boots
 * at once, unless `bootsLater` says the test boots it itself. The host's own workflow decides from
 * the events when it is done.
 */
function lab(env: TestWorkflowEnvironment, bootsLater: (host: string) => boolean = () => false) {
  const cycles: { host: string; atMs: number }[] = [];
  const plain = new Client({ connection: env.connection, namespace: env.namespace ?? 'default' });
  const server = {
    // Hosts are started by activity and followed. This server has no list queries (each open host
    // is described instead) and moves its clock only while no activity is in flight: one look per
    // call, and the rollout's timer between calls lets it skip ahead. A plain client: the test
    // environment's own unlocks the clock whenever it awaits a result.
    startHostWorkflows: (input: StartHostsInput) => startHostWorkflows(plain, input),
    followHosts: (input: FollowHostsInput) => followHosts(plain, { ...input, sweep: true, maxWaitMs: 0 }),
    cancelHostWorkflows: (input: { workflowIds: string[] }) => cancelHostWorkflows(plain, input),
    loadHostSpec(input: { commit: string; site: string; host: string }): Promise<HostSpec> {
      return Promise.resolve({
        site: input.site,
        host: input.host,
        group: GROUP,
        mac: macOf(input.host),
        ipv4: `10.0.0.${HOSTS.indexOf(input.host) + 1}`,
        never_provision: false,
        stages: [{ stage: 1, profile: 'debian', preShutdown: [], validation: [], kernelFromAgent: false }],
      });
    },
  } satisfies Partial<ServerActivities>;
  const agent = {
    armNetboot: () => Promise.resolve(),
    disarmNetboot: () => Promise.resolve(true),
    runJobs: () => Promise.resolve([]),
    async powerCycle(input: PowerCycleInput): Promise<PowerCycleResult> {
      const workflowId = Context.current().info.workflowExecution?.workflowId;
      assert.ok(workflowId, 'powerCycle runs for a host workflow');
      cycles.push({ host: input.host, atMs: await env.currentTimeMs() });
      if (!bootsLater(input.host)) await boot(env, workflowId, input.host);
      return { before: 'on', cycled: true };
    },
    async armAndPowerCycle(input: PowerCycleInput): Promise<PowerCycleResult & { armed: boolean }> {
      return { armed: true, ...(await agent.powerCycle(input)) };
    },
  } satisfies Partial<AgentActivities>;
  return { server, agent, cycles };
}

async function startRollout(env: TestWorkflowEnvironment, rebootWindow: RebootWindow) {
  return env.client.workflow.start<typeof siteRolloutWorkflow>('siteRolloutWorkflow', {
    taskQueue: SERVER_TASK_QUEUE,
    workflowId: rolloutWorkflowId(SITE, COMMIT),
    args: [{ site: SITE, commit: COMMIT, plan: labPlan(rebootWindow) }],
  });
}

async function held(status: () => Promise<RolloutStatus>, hosts: string[]): Promise<RolloutStatus> {
  for (let i = 0; i < 300; i++) {
    const s = await status();
    if (hosts.every((h) => s.hosts[h]?.step === HELD)) return s;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${hosts.join(', ')} never showed "${HELD}"`);
}

async function envOrSkip(t: TestContext) {
  const env = await timeSkippingEnvOrSkip(t);
  if (!env) return undefined;
  const startedMs = await env.currentTimeMs();
  // Whole minutes, as windows are written; five hours away, so closed now.
  const opensAtMs = Math.ceil((startedMs + 5 * HOUR) / MINUTE) * MINUTE;
  return { env, startedMs, opensAtMs, realStartMs: Date.now() };
}

// These take seconds; a hang fails in two minutes rather than holding the suite.
describe('site rollout on the time-skipping test server', { timeout: 120_000 }, () => {
  test('hosts are held until their group reboot window opens, hours later in seconds', async (t) => {
    const setup = await envOrSkip(t);
    if (!setup) return;
    const { env, startedMs, opensAtMs, realStartMs } = setup;
    const rebootWindow = windowOf({ start: hhmm(opensAtMs), end: hhmm(opensAtMs + 2 * HOUR) });
    const activities = lab(env);

    const result = await withWorkers(t, env, SITE, activities, async () => {
      const handle = await startRollout(env, rebootWindow);
      const status = await held(() => handle.query(statusQuery), ['w-01']);
      assert.equal(status.phase, 'running');
      assert.equal(status.wave, 1);
      assert.equal(status.hosts['w-01']?.state, 'pending');
      assert.equal(status.hosts['w-02']?.step, undefined, 'wave 2 waits for wave 1');
      assert.deepEqual(activities.cycles, [], 'no host is cycled while the window is closed');
      return handle.result();
    });

    assert.equal(result.phase, 'completed');
    assert.deepEqual(result.succeeded, HOSTS);
    assert.deepEqual(activities.cycles.map((c) => c.host).sort(), HOSTS, 'each host cycled once');
    for (const cycle of activities.cycles) {
      assert.ok(cycle.atMs >= opensAtMs, `${cycle.host} cycled ${(opensAtMs - cycle.atMs) / 1000} s early`);
      assert.ok(inWindow(rebootWindow, cycle.atMs), `${cycle.host} cycled inside the window`);
    }
    assert.ok((await env.currentTimeMs()) - startedMs >= 5 * HOUR, 'five hours went by on the server');
    assert.ok(Date.now() - realStartMs < 2 * MINUTE, 'in seconds of real time');
  });

  test('a window that closes mid-rollout holds the rest of the hosts until the next day', async (t) => {
    const setup = await envOrSkip(t);
    if (!setup) return;
    const { env, opensAtMs } = setup;
    // One minute long, and the canary takes three minutes to boot: wave 2 misses the window.
    const rebootWindow = windowOf({ start: hhmm(opensAtMs), end: hhmm(opensAtMs + MINUTE) });
    const activities = lab(env, (host) => host === 'w-01');

    const result = await withWorkers(t, env, SITE, activities, async () => {
      const handle = await startRollout(env, rebootWindow);
      await held(() => handle.query(statusQuery), ['w-01']);
      // The server's time stops at the end of a test-driven sleep, so the canary's boot comes at +3 min.
      await env.sleep(opensAtMs + 3 * MINUTE - (await env.currentTimeMs()));
      assert.deepEqual(
        activities.cycles.map((c) => c.host),
        ['w-01'],
      );
      await boot(env, hostWorkflowId(SITE, 'w-01', COMMIT), 'w-01');
      const status = await held(() => handle.query(statusQuery), ['w-02', 'w-03']);
      assert.equal(status.wave, 2);
      assert.equal(status.hosts['w-01']?.state, 'succeeded');
      assert.deepEqual(
        activities.cycles.map((c) => c.host),
        ['w-01'],
        'only the canary was cycled on the first day',
      );
      return handle.result();
    });

    assert.equal(result.phase, 'completed');
    assert.deepEqual(result.succeeded, HOSTS);
    const [canary, ...rest] = activities.cycles;
    assert.equal(canary?.host, 'w-01');
    assert.ok(canary && inWindow(rebootWindow, canary.atMs), 'the canary cycled in the first window');
    assert.deepEqual(rest.map((c) => c.host).sort(), ['w-02', 'w-03']);
    for (const cycle of rest) {
      assert.ok(cycle.atMs >= opensAtMs + 24 * HOUR, `${cycle.host} waited for the next day's window`);
      assert.ok(inWindow(rebootWindow, cycle.atMs), `${cycle.host} cycled inside the window`);
    }
  });
});
