// Issue 17: soak and metric gates on a real Temporal server with a real Prometheus (Debian's package)
// scraping an exporter the test controls. A healthy canary soaks and the rollout proceeds; a metric
// that goes bad during the soak halts it naming query and value; Prometheus down halts it with a
// clear reason; approve cuts a soak short. Soaks are seconds here, not minutes.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import {
  applyWorkflowId,
  SERVER_TASK_QUEUE,
  type RolloutStatus,
  type SiteRolloutInput,
  type SiteRolloutResult,
} from '../../schemas/rollout';
import type { ApplyCommitResult } from '../../workflows/apply-commit';
import { abortUpdate, approveUpdate, statusQuery } from '../../workflows/messages';
import { startPrometheus, type TestPrometheus } from '../helpers/prometheus';
import { startVaquero, type VaqueroEnv } from '../helpers/vaquero-env';

const fixture = fileURLToPath(new URL('../fixtures/sot-sim', import.meta.url));
// Generous: the sim boots in ~150 ms, but the machine is shared; a late event is no gate's business here.
const FAST = { dhcp: 30_000, ipxe: 30_000, kernel: 30_000, checkpoint: 30_000 };
const QUERY = 'vaquero_test_errors{host="{{ host.name }}"}';

async function hostNames(): Promise<string[]> {
  const dir = path.join(fixture, 'sites/sim1/hosts');
  const names: string[] = [];
  for (const file of ['control.yaml', 'edge.yaml', 'workers.yaml'])
    for (const m of (await readFile(path.join(dir, file), 'utf8')).matchAll(/^name: (\S+)$/gm))
      names.push(m[1]!);
  return names;
}

/** The site's policy with a soak and one gate on the errors of each host the wave reprovisioned. */
async function withGate(env: VaqueroEnv, prometheus: string, soak: string, extra = ''): Promise<void> {
  const file = path.join(env.sot, 'sites/sim1/site.yaml');
  const gate = `    - { name: errors, prometheus: "${prometheus}", query: '${QUERY}', must: "== 0", every: 1s${extra} }`;
  const text = await readFile(file, 'utf8');
  await writeFile(
    file,
    text.replace('  max_fail: 1\n', `  max_fail: 1\n  soak: ${soak}\n  gates:\n${gate}\n`),
  );
}

async function setAll(prom: TestPrometheus, value: number): Promise<void> {
  const names = await hostNames();
  for (const name of names) prom.set(`vaquero_test_errors{host="${name}"}`, value);
  await prom.seen(`vaquero_test_errors{host="${names[0]}"}`, value);
}

async function startRollout(env: VaqueroEnv, historyLimit?: number): Promise<string> {
  const sha = await env.commit(`soak ${randomUUID()}`);
  const limit = historyLimit ? { rolloutHistoryLimit: historyLimit } : {};
  const applied = (await env.client.workflow.execute('applyCommitWorkflow', {
    taskQueue: SERVER_TASK_QUEUE,
    workflowId: applyWorkflowId(sha),
    args: [{ commit: sha, source: env.sot, timeouts: FAST, ...limit }],
  })) as ApplyCommitResult;
  const id = applied.rollouts[0]?.workflowId;
  assert.ok(id, 'the commit starts a rollout');
  return id;
}

async function waitForPhase(
  env: VaqueroEnv,
  id: string,
  phase: RolloutStatus['phase'],
): Promise<RolloutStatus> {
  for (let i = 0; i < 600; i++) {
    const status = await env.client.workflow.getHandle(id).query(statusQuery);
    if (status.phase === phase) return status;
    await delay(100);
  }
  throw new Error(`${id} never reached ${phase}`);
}

/** How many times the rollout evaluated a gate (checkGate activities in its history). */
async function gateChecks(env: VaqueroEnv, id: string): Promise<number> {
  const history = await env.client.workflow.getHandle(id).fetchHistory();
  return (history.events ?? []).filter(
    (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'checkGate',
  ).length;
}

const ISO = '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ';

describe('soak and metric gates with a real Prometheus', () => {
  test('a healthy canary soaks, its gate watched, and the rollout proceeds to the end', async (t) => {
    const prom = await startPrometheus(t);
    const env = await startVaquero(t, { fixture, sites: ['sim1'], simTimeScale: 0.005 });
    if (!env) return;
    await setAll(prom, 0);
    await withGate(env, prom.url, '4s');
    const id = await startRollout(env);
    const soaking = await waitForPhase(env, id, 'soaking');
    assert.match(
      soaking.waitingFor ?? '',
      new RegExp(`^the canary's soak until ${ISO}, 1 gate watched: approve cuts it short, abort ends it$`),
    );
    assert.equal(soaking.counts.succeeded, 1, 'the canary is done, nothing else started');
    const start = Date.now();
    const result = (await env.client.workflow.getHandle(id).result()) as SiteRolloutResult;
    assert.equal(result.phase, 'completed');
    assert.equal(result.counts?.succeeded ?? result.succeeded?.length, 20);
    assert.ok(Date.now() - start >= 3_000, 'the soak held the rollout');
    // 5 checks in the 4 s soak (every 1 s), then one after each later wave.
    const checks = await gateChecks(env, id);
    assert.ok(checks >= 5 + 5, `gate checks: ${checks}`);
  });

  test('a metric that goes bad during the soak halts the rollout with the query, the value and the time', async (t) => {
    const prom = await startPrometheus(t);
    const env = await startVaquero(t, { fixture, sites: ['sim1'], simTimeScale: 0.005 });
    if (!env) return;
    await setAll(prom, 0);
    await withGate(env, prom.url, '2m');
    const id = await startRollout(env);
    const soaking = await waitForPhase(env, id, 'soaking');
    const canary = Object.entries(soaking.hosts).find(([, h]) => h.state === 'succeeded')?.[0];
    assert.ok(canary);
    prom.set(`vaquero_test_errors{host="${canary}"}`, 3);
    const halted = await waitForPhase(env, id, 'halted');
    assert.match(
      halted.waitingFor ?? '',
      new RegExp(
        `^gate "errors" failed at ${ISO} on ${canary}: vaquero_test_errors\\{host="${canary}"\\} = 3 \\{__name__="vaquero_test_errors", host="${canary}", instance="127\\.0\\.0\\.1:\\d+", job="test-exporter"\\}, must be == 0 \\(the canary's soak\\): approve to go on anyway, or abort$`,
      ),
    );
    assert.equal(halted.counts.succeeded, 1, 'no host after the canary started');
    await delay(1_500);
    assert.equal((await env.client.workflow.getHandle(id).query(statusQuery)).counts.running, 0);
    const aborted = await env.client.workflow
      .getHandle(id)
      .executeUpdate(abortUpdate, { args: ['bad canary'] });
    assert.equal(aborted.phase, 'aborted');
    const result = (await env.client.workflow.getHandle(id).result()) as SiteRolloutResult;
    assert.equal(result.phase, 'aborted');
  });

  test('Prometheus down halts with a clear reason; approve goes on anyway, to the next gate', async (t) => {
    const prom = await startPrometheus(t);
    const env = await startVaquero(t, { fixture, sites: ['sim1'], simTimeScale: 0.005 });
    if (!env) return;
    await withGate(env, prom.url, '2s');
    await prom.kill();
    const id = await startRollout(env);
    const handle = env.client.workflow.getHandle(id);
    const halted = await waitForPhase(env, id, 'halted');
    const port = new URL(prom.url).port;
    assert.match(
      halted.waitingFor ?? '',
      new RegExp(
        `^gate "errors" failed at ${ISO} on cp-01: vaquero_test_errors\\{host="cp-01"\\}: Prometheus at http://127\\.0\\.0\\.1:${port} cannot be reached: ECONNREFUSED \\(the canary's soak\\): approve to go on anyway, or abort$`,
      ),
    );
    const approved = await handle.executeUpdate(approveUpdate);
    assert.equal(approved.phase, 'running');
    // The next wave's hosts run, then its gate fails the same way and halts again.
    for (let i = 0; i < 600; i++) {
      const s = await handle.query(statusQuery);
      if (s.phase === 'halted' && s.counts.succeeded > 1) break;
      await delay(100);
    }
    const again = await handle.query(statusQuery);
    assert.equal(again.phase, 'halted');
    assert.match(
      again.waitingFor ?? '',
      /cannot be reached: ECONNREFUSED \(the gates after wave \d+\): approve/,
    );
    assert.ok(again.counts.succeeded > 1, `went on past the first halt: ${JSON.stringify(again.counts)}`);
    await handle.executeUpdate(abortUpdate, { args: ['prometheus down'] });
    assert.equal(((await handle.result()) as SiteRolloutResult).phase, 'aborted');
  });

  test('approve cuts a one-hour soak short; the status says until when it soaks', async (t) => {
    const prom = await startPrometheus(t);
    const env = await startVaquero(t, { fixture, sites: ['sim1'], simTimeScale: 0.005 });
    if (!env) return;
    await setAll(prom, 0);
    await withGate(env, prom.url, '1h');
    const id = await startRollout(env);
    const handle = env.client.workflow.getHandle(id);
    const soaking = await waitForPhase(env, id, 'soaking');
    const until = /until (\S+),/.exec(soaking.waitingFor ?? '')?.[1];
    assert.ok(until, soaking.waitingFor);
    const left = new Date(until).getTime() - Date.now();
    assert.ok(left > 3_500_000 && left <= 3_600_000, `soaks until ${until}`);
    await delay(1_500);
    assert.equal((await handle.query(statusQuery)).phase, 'soaking', 'still soaking');
    const approved = await handle.executeUpdate(approveUpdate);
    assert.equal(approved.phase, 'running');
    const result = (await handle.result()) as SiteRolloutResult;
    assert.equal(result.phase, 'completed');
    assert.equal(result.counts?.succeeded ?? result.succeeded?.length, 20);
  });

  test('continue-as-new carries which waves passed their gates; later runs judge the rest', async (t) => {
    const prom = await startPrometheus(t);
    const env = await startVaquero(t, { fixture, sites: ['sim1'], simTimeScale: 0.005 });
    if (!env) return;
    await setAll(prom, 0);
    await withGate(env, prom.url, '2s');
    const id = await startRollout(env, 60);
    const result = (await env.client.workflow.getHandle(id).result()) as SiteRolloutResult;
    assert.equal(result.phase, 'completed');
    const runs: string[] = [];
    for await (const info of env.client.workflow.list({ query: `WorkflowId = ${JSON.stringify(id)}` }))
      runs.push(info.runId);
    assert.ok(runs.length > 1, `continued as new: ${runs.length} runs`);
    const carried: number[] = [];
    let laterChecks = 0;
    for (const runId of runs) {
      const history = await env.client.workflow.getHandle(id, runId).fetchHistory();
      const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
      const data = started?.input?.payloads?.[0]?.data;
      const input = data ? (JSON.parse(Buffer.from(data).toString('utf8')) as SiteRolloutInput) : undefined;
      if (!input?.carry) continue;
      if (input.carry.gates) carried.push(input.carry.gates.passed);
      laterChecks += (history.events ?? []).filter(
        (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'checkGate',
      ).length;
    }
    assert.ok(carried.length > 0 && Math.max(...carried) >= 2, `carried passed waves: ${carried.join(', ')}`);
    assert.ok(laterChecks > 0, 'runs after the first judge gates too');
  });
});
