// A rolling upgrade of a site's two agents during a rollout (issue 13, item 6; docs/operations/
// agents.md): each agent is stopped with SIGTERM and started again, one after the other, while hosts
// are armed and booting. No boot event and no host is lost: the rollout completes, every host was
// power-cycled once (counted at the sim BMCs of both agents), and no host is left armed.
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
import { cachedArms, startSiteRig, type AgentProcess } from '../helpers/agent-process';
import { connectOrSkip } from '../helpers/temporal';

const SCALE = 0.01;

async function cyclesOf(agents: AgentProcess[]): Promise<Map<string, number>> {
  const total = new Map<string, number>();
  for (const agent of agents)
    for (const [key, n] of await readCycleLog(path.join(agent.stateDir, 'sim-cycles.log')))
      total.set(key, (total.get(key) ?? 0) + n);
  return total;
}

test(
  'rolling restart of both agents during a rollout: no boot event and no host lost',
  { timeout: 300_000 },
  async (t) => {
    const connection = await connectOrSkip(t);
    if (!connection) return;
    const dir = await mkdtemp(path.join(tmpdir(), 'vaquero-rolling-'));
    const rig = await startSiteRig(dir, ['agent-a', 'agent-b']);
    t.after(async () => {
      for (const agent of rig.agentsOf()) await agent.kill();
      await rig.server.stop();
      await rm(dir, { recursive: true, force: true });
    });
    const options = { simTimeScale: SCALE };
    let a = await rig.startAgent('agent-a', options);
    let b = await rig.startAgent('agent-b', options);
    const first = { a, b };
    const client = new Client({ connection, namespace: rig.namespace });
    const sha = await rig.apply('first');
    const { rollouts } = (await client.workflow
      .getHandle(applyWorkflowId(sha))
      .result()) as ApplyCommitResult;
    const rollout = client.workflow.getHandle(rollouts[0]?.workflowId ?? '');
    const outcome = rollout.result() as Promise<SiteRolloutResult>;

    // The upgrade, as docs/operations/agents.md says it: one agent at a time, the next once the
    // restarted one is back; each while hosts are armed and mid-boot.
    const midRollout = async (cycled: number) => {
      for (let i = 0; ; i++) {
        const count = [...(await cyclesOf([first.a, first.b])).values()].reduce((x, y) => x + y, 0);
        if (count >= cycled && ((await cachedArms(a)).length > 0 || (await cachedArms(b)).length > 0)) return;
        assert.ok(i < 2400, `the rollout never reached ${cycled} power cycles`);
        await sleep(25);
      }
    };
    await midRollout(3);
    await a.stop();
    a = await rig.startAgent('agent-a', options);
    await midRollout(8);
    await b.stop();
    b = await rig.startAgent('agent-b', options);

    const result = await outcome;
    assert.equal(result.phase, 'completed');
    assert.equal(result.succeeded?.length, 20);
    assert.deepEqual(result.failed ?? [], []);
    const cycles = await cyclesOf([a, b]);
    assert.equal(cycles.size, 20);
    assert.deepEqual(
      [...cycles].filter(([, n]) => n !== 1),
      [],
      'each host cycled once',
    );
    assert.deepEqual(await cachedArms(a), []);
    assert.deepEqual(await cachedArms(b), []);
    // Nothing was dropped as the boot event of an unarmed host on either agent.
    for (const agent of rig.agentsOf()) assert.doesNotMatch(agent.output(), /unarmed host"/, agent.name);
    assert.equal(rig.agentsOf().length, 4, 'both agents ran twice');
  },
);
