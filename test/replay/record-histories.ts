// Records workflow histories for test/replay/replay.test.ts: the scenarios of
// test/temporal/rollout.test.ts, run on the dev server with sim BMCs, written as proto JSON. Host
// failures the scenarios inject are logged by the worker as "Workflow failed" warnings. Re-record
// only after an intended change made safe with patched() (see test/replay/histories/README.md).
//
//   npm run record:histories [-- scenario ...]   (default: every scenario)
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import {
  applyWorkflowId,
  hostWorkflowId,
  rolloutWorkflowId,
  SERVER_TASK_QUEUE,
  type RolloutStatus,
  type SiteRolloutResult,
} from '../../schemas/rollout';
import { statusQuery } from '../../workflows/messages';
import { historyToJSON, type History } from '../helpers/history-json';
import { startPrometheus } from '../helpers/prometheus';
import { launchVaquero, type VaqueroEnv } from '../helpers/vaquero-env';
import { taskBuildIds, upgradeMidRollout } from '../helpers/worker-upgrade';

const fixture = fileURLToPath(new URL('../fixtures/sot-sim', import.meta.url));
const historiesDir = fileURLToPath(new URL('./histories', import.meta.url));
// Not vaquero-test: a test run going on at the same time terminates everything running there.
// $VAQUERO_RECORD_NAMESPACE: two people recording on one server at once.
const NAMESPACE = process.env.VAQUERO_RECORD_NAMESPACE ?? 'vaquero-record';
const FAST = { dhcp: 5_000, ipxe: 5_000, kernel: 5_000, checkpoint: 5_000 };
/** Host histories kept per scenario: they differ little from one another, and the files add up. */
const MAX_HOSTS = 3;

/** `apply/abc` is written as `apply__abc.json` (test/replay.test.ts reverses it): ids never hold `__`. */
const fileName = (workflowId: string) => `${workflowId.replaceAll('/', '__')}.json`;

interface Scenario {
  expect: SiteRolloutResult['phase'];
  /** Edits the SoT or injects faults before the commit is applied; may return its clean-up. */
  before?(env: VaqueroEnv): void | Promise<void | (() => Promise<void>)>;
  /**
   * Drives the rollout by signals, as an operator would, until it can finish. What it returns is
   * called once the rollout closed (it stops what the scenario started).
   */
  drive?(env: VaqueroEnv, rolloutId: string): Promise<void | (() => Promise<void>)>;
  /** Which host histories may be kept (default: any): those that replay on the current code. */
  keepHost?: (history: History) => boolean;
  /**
   * Keeps only the host workflows' histories: a scenario of the host workflow's own shape (the
   * rollout's is recorded by the others, and must not be tied to this one's changes).
   */
  hostsOnly?: boolean;
  /** Passed to the rollout as its history limit: it continues as new, and every run is recorded. */
  historyLimit?: number;
}

async function waitFor(env: VaqueroEnv, id: string, phase: RolloutStatus['phase']): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if ((await env.client.workflow.getHandle(id).query(statusQuery)).phase === phase) return;
    await delay(100);
  }
  throw new Error(`rollout ${id} never reached ${phase}`);
}

const signal = (env: VaqueroEnv, id: string, name: string, input?: string) =>
  env.cli('workflow', 'signal', '--workflow-id', id, '--name', name, ...(input ? ['--input', input] : []));

/** Starts a Prometheus scraping an exporter of healthy hosts, and gives the site a soak and a gate. */
async function soakAndGate(env: VaqueroEnv): Promise<() => Promise<void>> {
  const cleanups: (() => Promise<void>)[] = [];
  const prom = await startPrometheus({ after: (fn) => void cleanups.push(fn as () => Promise<void>) });
  for (const host of ['cp-01', 'cp-02', 'cp-03', 'edge-01', 'edge-02'])
    prom.set(`vaquero_test_errors{host="${host}"}`, 0);
  for (let i = 1; i <= 15; i++) prom.set(`vaquero_test_errors{host="wk-${String(i).padStart(2, '0')}"}`, 0);
  await prom.seen('vaquero_test_errors{host="cp-01"}', 0);
  const file = path.join(env.sot, 'sites/sim1/site.yaml');
  const text = await readFile(file, 'utf8');
  const gate = `    - { name: errors, prometheus: "${prom.url}", query: 'vaquero_test_errors{host="{{ host.name }}"}', must: "== 0", every: 1s }`;
  await writeFile(file, text.replace('  max_fail: 1\n', `  max_fail: 1\n  soak: 2s\n  gates:\n${gate}\n`));
  return async () => {
    for (const fn of cleanups) await fn();
  };
}

const scenarios: Record<string, Scenario> = {
  'rollout-completed': { expect: 'completed' },
  'rollout-canary-failed-aborted': {
    expect: 'aborted',
    before: (env) => env.fault('sim1/cp-01', 'checkpoint'),
    async drive(env, id) {
      await waitFor(env, id, 'halted');
      await signal(env, id, 'abort', '"stop: bad image"');
    },
  },
  'rollout-retry-host': {
    expect: 'completed',
    before: (env) => env.fault('sim1/cp-01', 'dhcp'),
    async drive(env, id) {
      await waitFor(env, id, 'halted');
      env.fault('sim1/cp-01', undefined);
      await signal(env, id, 'retry-host', '"cp-01"');
    },
  },
  'rollout-approval-pause-resume': {
    expect: 'completed',
    async before(env) {
      const file = path.join(env.sot, 'sites/sim1/site.yaml');
      const text = await readFile(file, 'utf8');
      const next = text.replace('approval_required: false', 'approval_required: true');
      if (next === text) throw new Error(`${file}: no approval_required: false to turn on`);
      await writeFile(file, next);
    },
    async drive(env, id) {
      await waitFor(env, id, 'waiting-approval');
      await signal(env, id, 'pause');
      await signal(env, id, 'approve');
      await waitFor(env, id, 'paused');
      await signal(env, id, 'resume');
    },
  },
  // The plan read from the store in parts; the rollout continues as new with a compact carry.
  'rollout-stored-plan-continue-as-new': { expect: 'completed', historyLimit: 30 },
  // A soak after the canary and a gate after every wave, judged by a real Prometheus (patch
  // rollout-soak-gates); history limit 60, so the gates' progress rides the carry.
  'rollout-soak-gates-continue-as-new': { expect: 'completed', historyLimit: 60, before: soakAndGate },
  // Worker Versioning (docs/operations/upgrades.md): version N (this code) starts the rollout, N+1
  // (test/fixtures/upgrade-next) is made current with hosts in flight; the rollout's history has
  // tasks of both. Hosts kept: those N ran (N+1's host code does not replay here, by design).
  'rollout-worker-upgrade': {
    expect: 'completed',
    drive: (env, id) => upgradeMidRollout(env, id, 'record-next'),
    keepHost: (h) => !taskBuildIds(h).includes('record-next'),
  },
  // reprovisionHostWorkflowV2: no patch markers, the group search attribute set by the parent.
  'host-v2': { expect: 'completed', hostsOnly: true },
  // The host's spec in its input, from the rollout's start activity: no local activity, no marker.
  'host-v2-spec-in-input': { expect: 'completed', hostsOnly: true },
  // Boot events in batches, one watchdog timer, the host disarmed by its agent (patch boot-event-batches).
  'host-boot-batches': { expect: 'completed', hostsOnly: true },
  'host-boot-batches-timeout': {
    expect: 'aborted',
    hostsOnly: true,
    before: (env) => env.fault('sim1/cp-01', 'checkpoint'),
    async drive(env, id) {
      await waitFor(env, id, 'halted');
      await signal(env, id, 'abort', '"stop: checkpoint missed"');
    },
  },
  // The canary's first DHCP is lost: it is power-cycled again and completes (patch boot-retries).
  'host-boot-retry': {
    expect: 'completed',
    hostsOnly: true,
    async before(env) {
      const file = path.join(env.sot, 'workflows/control.yaml');
      const text = await readFile(file, 'utf8');
      const next = text.replace('boot_retries: 0', 'boot_retries: 2');
      if (next === text) throw new Error(`${file}: no boot_retries: 0 to raise`);
      await writeFile(file, next);
      env.fault('sim1/cp-01', 'dhcp');
    },
    async drive(env) {
      for (let i = 0; !(await env.cycles()).get('sim1/cp-01'); i++) {
        if (i > 600) throw new Error('cp-01 was never power-cycled');
        await delay(50);
      }
      env.fault('sim1/cp-01', undefined);
    },
  },
};

/** Every run of the rollout, oldest first (more than one when it continued as new). */
async function rolloutRuns(env: VaqueroEnv, rolloutId: string): Promise<History[]> {
  const runs: { start: number; runId: string }[] = [];
  for await (const info of env.client.workflow.list({ query: `WorkflowId = ${JSON.stringify(rolloutId)}` }))
    runs.push({ start: info.startTime.getTime(), runId: info.runId });
  runs.sort((a, b) => a.start - b.start);
  const histories: History[] = [];
  for (const { runId } of runs)
    histories.push(await env.client.workflow.getHandle(rolloutId, runId).fetchHistory());
  return histories;
}

/** Child workflow ids in the order the parent started them. */
function childIds(history: History): string[] {
  return (history.events ?? []).flatMap(
    (e) => e.startChildWorkflowExecutionInitiatedEventAttributes?.workflowId ?? [],
  );
}

async function record(name: string, scenario: Scenario): Promise<string[]> {
  const env = await launchVaquero({ fixture, sites: ['sim1'], simTimeScale: 0.005, namespace: NAMESPACE });
  let cleanup: void | (() => Promise<void>) = undefined;
  try {
    cleanup = await scenario.before?.(env);
    // A message of its own: two scenarios committed in the same second must not share a SHA.
    const commit = await env.commit(`record ${name}`);
    const rolloutId = rolloutWorkflowId('sim1', commit);
    const apply = await env.client.workflow.start('applyCommitWorkflow', {
      taskQueue: SERVER_TASK_QUEUE,
      workflowId: applyWorkflowId(commit),
      args: [
        {
          commit,
          source: env.sot,
          timeouts: FAST,
          ...(scenario.historyLimit ? { rolloutHistoryLimit: scenario.historyLimit } : {}),
        },
      ],
    });
    // The apply ends once it has started the rollout, which then answers queries.
    await apply.result();
    const stop = await scenario.drive?.(env, rolloutId);
    const result = (await env.client.workflow.getHandle(rolloutId).result()) as SiteRolloutResult;
    await stop?.();
    if (result.phase !== scenario.expect)
      throw new Error(`${name}: rollout ended ${result.phase}, expected ${scenario.expect}`);

    const runs = await rolloutRuns(env, rolloutId);
    const rolloutHistory = runs.at(-1)!;
    // Rollouts that start hosts by activity (patch hosts-started-by-activity) have no children: the
    // control group's hosts go first, under their deterministic ids.
    const children = childIds(runs[0]!);
    const candidates =
      children.length > 0
        ? children
        : ['cp-01', 'cp-02', 'cp-03'].map((h) => hostWorkflowId('sim1', h, commit));
    const hosts: string[] = [];
    for (const id of candidates) {
      if (hosts.length === MAX_HOSTS) break;
      const keep = scenario.keepHost ?? (() => true);
      if (keep(await env.client.workflow.getHandle(id).fetchHistory())) hosts.push(id);
    }
    const ids = scenario.hostsOnly ? hosts : [apply.workflowId, rolloutId, ...hosts];
    const dir = path.join(historiesDir, name);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    for (const id of ids) {
      const history =
        id === rolloutId ? rolloutHistory : await env.client.workflow.getHandle(id).fetchHistory();
      await writeFile(path.join(dir, fileName(id)), `${historyToJSON(history)}\n`);
    }
    // Earlier runs of a rollout that continued as new: `rollout__sim1__abc__run-1.json` and on.
    if (!scenario.hostsOnly)
      for (const [i, history] of runs.slice(0, -1).entries())
        await writeFile(path.join(dir, fileName(`${rolloutId}/run-${i + 1}`)), `${historyToJSON(history)}\n`);
    return ids;
  } finally {
    await env.close();
    if (cleanup) await cleanup();
  }
}

async function main(names: string[]): Promise<number> {
  const unknown = names.filter((n) => !(n in scenarios));
  if (unknown.length > 0) {
    console.error(
      `record-histories: unknown scenario ${unknown.join(', ')}; known: ${Object.keys(scenarios).join(', ')}`,
    );
    return 2;
  }
  for (const name of names.length > 0 ? names : Object.keys(scenarios)) {
    try {
      const ids = await record(name, scenarios[name] as Scenario);
      console.log(`record-histories: ${name}: ${ids.length} histories`);
    } catch (err) {
      console.error(`record-histories: ${name}: ${err instanceof Error ? err.message : String(err)}`);
      return 1;
    }
  }
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
