// Two `vaquero agent` processes of one site with a real `vaquero server` (issue 13, item 1): every
// arm and disarm, whichever agent ran it, is in the other agent's netboot.json within a second;
// no host is left armed after the rollout; and with the server gone an agent keeps serving its cache.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '@temporalio/client';
import { readCycleLog } from '../../activities/power/sim-power';
import { applyWorkflowId, type SiteRolloutResult } from '../../schemas/rollout';
import type { ApplyCommitResult } from '../../workflows/apply-commit';
import { AGENT_TOKEN, cachedArms, startSiteRig, type AgentProcess } from '../helpers/agent-process';
import { connectOrSkip } from '../helpers/temporal';

/** The bound of item 1, plus the sampling period of this test. */
const VISIBLE_MS = 1_000;
const SAMPLE_MS = 20;

type Times = Map<string, Map<string, number>>;
const mark = (times: Times, key: string, agent: string, at: number) => {
  const byAgent = times.get(key) ?? new Map<string, number>();
  if (!byAgent.has(agent)) byAgent.set(agent, at);
  times.set(key, byAgent);
};

/** Samples both caches: when each arm (MAC and workflow) appeared in, and left, each agent's file. */
function sampleCaches(agents: AgentProcess[]) {
  const armedAt: Times = new Map();
  const goneAt: Times = new Map();
  const held = new Map<string, Set<string>>();
  let running = true;
  const done = (async () => {
    while (running) {
      for (const agent of agents) {
        const now = Date.now();
        const keys = new Set((await cachedArms(agent)).map((e) => `${e.mac} ${e.workflowId}`));
        for (const key of keys) mark(armedAt, key, agent.name, now);
        for (const key of held.get(agent.name) ?? []) if (!keys.has(key)) mark(goneAt, key, agent.name, now);
        held.set(agent.name, keys);
      }
      await sleep(SAMPLE_MS);
    }
  })();
  return {
    armedAt,
    goneAt,
    stop: async () => {
      running = false;
      await done;
    },
  };
}

function worstLag(times: Times, agents: string[]): { key: string; lag: number } {
  let worst = { key: '', lag: 0 };
  for (const [key, byAgent] of times) {
    const at = agents.map((a) => byAgent.get(a));
    assert.ok(
      at.every((t) => t !== undefined),
      `${key}: seen by ${[...byAgent.keys()].join(', ')} only`,
    );
    const lag = Math.max(...at.map(Number)) - Math.min(...at.map(Number));
    if (lag > worst.lag) worst = { key, lag };
  }
  return worst;
}

test(
  'two agents: each arm and disarm is in the other agent’s cache within 1 s; a partitioned agent serves its cache',
  { timeout: 240_000 },
  async (t) => {
    const connection = await connectOrSkip(t);
    if (!connection) return;
    const dir = await mkdtemp(path.join(tmpdir(), 'vaquero-shared-arms-'));
    const rig = await startSiteRig(dir, ['agent-a', 'agent-b']);
    t.after(async () => {
      for (const agent of rig.agentsOf()) await agent.kill();
      await rig.server.stop();
      await rm(dir, { recursive: true, force: true });
    });
    const a = await rig.startAgent('agent-a');
    const b = await rig.startAgent('agent-b');
    const client = new Client({ connection, namespace: rig.namespace });

    const sampler = sampleCaches([a, b]);
    const sha = await rig.apply('first');
    const { rollouts } = (await client.workflow
      .getHandle(applyWorkflowId(sha))
      .result()) as ApplyCommitResult;
    const result = (await client.workflow
      .getHandle(rollouts[0]?.workflowId ?? '')
      .result()) as SiteRolloutResult;
    await sleep(VISIBLE_MS + 200);
    await sampler.stop();

    assert.equal(result.phase, 'completed');
    assert.equal(result.succeeded?.length, 20);
    // Both agents took part: each ran arms (their sim BMCs cycled hosts).
    const cycles = [await readCycleLog(path.join(a.stateDir, 'sim-cycles.log'))];
    cycles.push(await readCycleLog(path.join(b.stateDir, 'sim-cycles.log')));
    assert.ok(
      cycles.every((c) => c.size > 0),
      `cycles per agent: ${cycles.map((c) => c.size).join(', ')}`,
    );
    assert.equal(sampler.armedAt.size, 20, 'every host was armed once, in both caches');
    const armLag = worstLag(sampler.armedAt, ['agent-a', 'agent-b']);
    const disarmLag = worstLag(sampler.goneAt, ['agent-a', 'agent-b']);
    t.diagnostic(`worst arm lag ${armLag.lag} ms (${armLag.key}), worst disarm lag ${disarmLag.lag} ms`);
    assert.ok(armLag.lag <= VISIBLE_MS, `arm ${armLag.key} reached the other agent after ${armLag.lag} ms`);
    assert.ok(disarmLag.lag <= VISIBLE_MS, `disarm ${disarmLag.key}: ${disarmLag.lag} ms`);
    // No host is left armed in either agent: its next unrelated reboot boots from disk.
    assert.deepEqual(await cachedArms(a), []);
    assert.deepEqual(await cachedArms(b), []);

    // An arm, then the server goes away: agent B keeps answering the armed host with its netboot.
    const mac = '52:54:00:99:00:0b';
    const arm = {
      mac,
      site: 'sim1',
      host: 'cp-01',
      commit: sha,
      stage: 1,
      workflowId: 'host/sim1/cp-01/partition',
      armedAt: new Date().toISOString(),
      token: 'p'.repeat(32),
    };
    const put = await fetch(`${rig.server.url}/agent/v1/arms/${mac}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${AGENT_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(arm),
    });
    assert.equal(put.status, 200, await put.text());
    // The real server's limits: a body over 64 KiB is refused before it is read, bad JSON is a 400.
    const headers = { authorization: `Bearer ${AGENT_TOKEN}`, 'content-type': 'application/json' };
    const arms = `${rig.server.url}/agent/v1/arms/52:54:00:99:00:0c`;
    const huge = await fetch(arms, {
      method: 'PUT',
      headers,
      body: JSON.stringify({ pad: 'x'.repeat(100_000) }),
    });
    assert.equal(huge.status, 413);
    assert.equal((await fetch(arms, { method: 'PUT', headers, body: '{"mac": ' })).status, 400);
    assert.equal(
      (await fetch(`${rig.server.url}/agent/v1/arms/__proto__`, { method: 'PUT', headers, body: '{}' }))
        .status,
      400,
    );
    for (let i = 0; !(await cachedArms(b)).some((e) => e.mac === mac); i++) {
      assert.ok(i * SAMPLE_MS < VISIBLE_MS, 'the arm did not reach agent B');
      await sleep(SAMPLE_MS);
    }
    assert.equal(await rig.server.stop(), 0);
    await sleep(1_500);
    const script = await (await fetch(`http://127.0.0.1:${b.httpPort}/ipxe/52-54-00-99-00-0b`)).text();
    assert.doesNotMatch(script, /not armed for network boot/);
    assert.match(script, /kernel|chain/);
    assert.match(b.output(), /site arms unreachable: serving the cached ones/);
    assert.ok(
      (await cachedArms(b)).some((e) => e.mac === mac),
      'the cache outlives the partition',
    );
  },
);
