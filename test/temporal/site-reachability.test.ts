// A host whose boot events are late at a site whose agents are all silent waits for the agents instead
// of failing (docs/outages.md, "An unreachable site's rollout waits"): the agent journals boot events
// on disk and delivers them when it is back. Runs on the time-skipping test server, so the minutes of
// waiting take seconds.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { WorkflowFailedError } from '@temporalio/client';
import type { AgentActivities } from '../../activities/agent-activities';
import type { ServerActivities } from '../../activities/server-activities';
import { hostWorkflowId, SERVER_TASK_QUEUE, type HostSpec } from '../../schemas/rollout';
import { bootEventSignal } from '../../workflows/messages';
import type { reprovisionHostWorkflow } from '../../workflows/reprovision-host';
import { closedAfterMs, timeSkippingEnvOrSkip, withWorkers } from '../helpers/time-skipping';

const SITE = 'edge';
const HOST = 'e-01';
const MAC = '52:54:00:00:00:01';
const COMMIT = 'fedcba9876543210fedcba9876543210fedcba98';
const MINUTE = 60_000;
const DHCP_TIMEOUT = 5 * MINUTE;

type Reachability = 'reachable' | 'unreachable' | 'unknown';

/** Server and agent activities of a site whose reachability the test sets; the host never boots by itself. */
function site(initial: Reachability) {
  const state = { reachability: initial, asked: 0, cycles: 0 };
  const server = {
    loadHostSpec: (): Promise<HostSpec> =>
      Promise.resolve({
        site: SITE,
        host: HOST,
        group: 'edge',
        mac: MAC,
        ipv4: '10.9.0.11',
        never_provision: false,
        stages: [{ stage: 1, profile: 'debian', preShutdown: [], validation: [], kernelFromAgent: false }],
      }),
    siteReachability: (): Promise<Reachability> => {
      state.asked += 1;
      return Promise.resolve(state.reachability);
    },
  } satisfies Partial<ServerActivities>;
  const agent = {
    armNetboot: () => Promise.resolve(),
    disarmNetboot: () => Promise.resolve(true),
    runJobs: () => Promise.resolve([]),
    powerCycle: () => {
      state.cycles += 1;
      return Promise.resolve({ before: 'on' as const, cycled: true });
    },
    armAndPowerCycle: () => {
      state.cycles += 1;
      return Promise.resolve({ armed: true, before: 'on' as const, cycled: true });
    },
  } satisfies Partial<AgentActivities>;
  return { state, server, agent };
}

function start(env: TestWorkflowEnvironment) {
  return env.client.workflow.start<typeof reprovisionHostWorkflow>('reprovisionHostWorkflow', {
    taskQueue: SERVER_TASK_QUEUE,
    workflowId: hostWorkflowId(SITE, HOST, COMMIT),
    args: [{ site: SITE, host: HOST, commit: COMMIT }],
  });
}

/** What the agent's journal delivers once it is back: the boot of the host, as `boot-event` signals. */
async function deliverBoot(env: TestWorkflowEnvironment): Promise<void> {
  const handle = env.client.workflow.getHandle(hostWorkflowId(SITE, HOST, COMMIT));
  const at = new Date(await env.currentTimeMs()).toISOString();
  for (const kind of ['dhcp', 'ipxe', 'checkpoint'] as const) {
    await handle.signal(bootEventSignal, { kind, mac: MAC, stage: 1, at });
  }
}

async function failureOf(result: Promise<unknown>): Promise<string> {
  const err = await result.then(
    () => assert.fail('the host workflow succeeded'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof WorkflowFailedError, String(err));
  return err.cause?.message ?? '';
}

describe('a site whose agents are silent', { timeout: 120_000 }, () => {
  test('its host waits past the boot-step timeout and completes when the agent delivers its events', async (t) => {
    const env = await timeSkippingEnvOrSkip(t);
    if (!env) return;
    const lab = site('unreachable');
    const { result, closed } = await withWorkers(t, env, SITE, lab, async () => {
      const handle = await start(env);
      // Twice the DHCP timeout: a site that was reachable would have failed the host long ago.
      await env.sleep(2 * DHCP_TIMEOUT);
      const { status } = await handle.describe();
      assert.equal(status.name, 'RUNNING', 'the host waits while its site is unreachable');
      assert.ok(lab.state.asked >= 4, `asked ${lab.state.asked} times whether the site is back`);
      // The agent is heard from again; its journal then delivers the boot it saw while partitioned.
      lab.state.reachability = 'reachable';
      await env.sleep(2 * MINUTE);
      assert.equal((await handle.describe()).status.name, 'RUNNING', 'given the timeout once more');
      await deliverBoot(env);
      const result = await handle.result();
      return { result, closed: await closedAfterMs(handle) };
    });
    assert.equal(result.ok, true);
    assert.equal(lab.state.cycles, 1, 'one power cycle: the wait does not reboot the host');
    assert.ok(closed >= 2 * DHCP_TIMEOUT + 2 * MINUTE, `completed after ${closed / 1000} s`);
  });

  test('a reachable site fails a host whose events do not come, at the timeout', async (t) => {
    const env = await timeSkippingEnvOrSkip(t);
    if (!env) return;
    const lab = site('reachable');
    const { message, closed } = await withWorkers(t, env, SITE, lab, async () => {
      const handle = await start(env);
      const message = await failureOf(handle.result());
      return { message, closed: await closedAfterMs(handle) };
    });
    assert.match(message, /stage 1 dhcp: no dhcp event from 52:54:00:00:00:01 within 300 s/);
    assert.equal(lab.state.asked, 1, 'asked once, at the timeout');
    // The server's clock runs on after the result; the workflow's own close time tells when it failed.
    assert.ok(closed >= DHCP_TIMEOUT && closed < DHCP_TIMEOUT + MINUTE, `failed after ${closed / 1000} s`);
  });

  test('a site that comes back without the events fails the host one timeout later', async (t) => {
    const env = await timeSkippingEnvOrSkip(t);
    if (!env) return;
    const lab = site('unreachable');
    const message = await withWorkers(t, env, SITE, lab, async () => {
      const handle = await start(env);
      await env.sleep(DHCP_TIMEOUT + 3 * MINUTE);
      lab.state.reachability = 'reachable';
      return failureOf(handle.result());
    });
    assert.match(message, /no dhcp event from 52:54:00:00:00:01 within 300 s/);
    assert.equal(lab.state.cycles, 1);
  });
});
