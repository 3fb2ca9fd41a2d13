import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { applyWorkflowId, SERVER_TASK_QUEUE, type SiteRolloutResult } from '../../schemas/rollout';
import type { ApplyCommitResult } from '../../workflows/apply-commit';
import { temporalAddress } from '../helpers/temporal';
import { startVaquero } from '../helpers/vaquero-env';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const fixture = path.join(repo, 'test/fixtures/sot-sim');

function startAgent(stateDir: string, namespace: string): ChildProcess {
  const args = ['bin/vaquero.mjs', 'agent', '--site', 'sim1', '--state-dir', stateDir];
  args.push('--temporal-address', temporalAddress(), '--namespace', namespace);
  // The BMC answers 3 s after the machine acted: the window in which the agent is killed.
  args.push('--sim-time-scale', '0.005', '--sim-power-latency-ms', '3000', '--in-doubt-grace-ms', '5000');
  return spawn(process.execPath, args, { cwd: repo, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
}

async function readLines(file: string): Promise<string[]> {
  try {
    return (await readFile(file, 'utf8')).split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

test('kill -9 of the agent in the middle of a power cycle: the rollout completes, every host cycled once', async (t) => {
  const env = await startVaquero(t, { fixture, sites: [], cycleSites: ['sim1'], simTimeScale: 0.005 });
  if (!env) return;
  const stateDir = path.join(env.stateDir, 'agent-sim1');
  let agent = startAgent(stateDir, env.namespace);
  t.after(() => {
    if (agent.exitCode === null && agent.pid) process.kill(-agent.pid, 'SIGKILL');
  });
  const sha = await env.commit('first');
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

  // The canary's cycle has happened at the BMC, and the agent still waits for the BMC's answer.
  const ledger = path.join(stateDir, 'power-ledger.log');
  for (let i = 0; ; i++) {
    const lines = await readLines(ledger);
    const cycled = await readLines(path.join(stateDir, 'sim-cycles.log'));
    if (
      lines.some((l) => l.startsWith('begin ')) &&
      !lines.some((l) => l.startsWith('done ')) &&
      cycled.length === 1
    )
      break;
    assert.ok(i < 300, 'the canary power cycle never began');
    await delay(50);
  }
  assert.ok(agent.pid);
  process.kill(-agent.pid, 'SIGKILL');
  await new Promise((resolve) => agent.once('exit', resolve));
  await delay(1000);
  agent = startAgent(stateDir, env.namespace);

  const result = (await env.client.workflow
    .getHandle(rollouts[0]?.workflowId ?? '')
    .result()) as SiteRolloutResult;
  assert.equal(result.phase, 'completed');
  assert.equal(result.succeeded!.length, 20);
  const cycles = await env.cycles();
  assert.equal(cycles.size, 20);
  for (const [host, n] of cycles) assert.equal(n, 1, `${host} was power-cycled ${n} times`);
  const ledgerLines = await readLines(ledger);
  assert.equal(ledgerLines.filter((l) => l.startsWith('begin ')).length, 20, 'one cycle begun per host');
});
