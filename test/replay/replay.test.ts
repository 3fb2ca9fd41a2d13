// Replays the histories in test/replay/histories/ (recorded by `npm run record:histories`) against the
// current workflow code. A failure means a change would break workflows already running: guard it
// with patched(). Needs no Temporal server.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { HistoryAndWorkflowId } from '@temporalio/common';
import { bundleWorkflowCode, DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { historyFromJSON } from '../helpers/history-json';
import { workflowsPath } from '../helpers/temporal';
import { taskBuildIds } from '../helpers/worker-upgrade';

const historiesDir = fileURLToPath(new URL('./histories', import.meta.url));
const alteredWorkflowsPath = fileURLToPath(
  new URL('../fixtures/altered-workflows/index.ts', import.meta.url),
);
const SCENARIOS = [
  'rollout-completed',
  'rollout-canary-failed-aborted',
  'rollout-retry-host',
  'rollout-approval-pause-resume',
  'rollout-stored-plan-continue-as-new',
  'rollout-soak-gates-continue-as-new',
  'rollout-worker-upgrade',
];
/** Scenarios of the host workflow's own shapes: host histories only (record-histories `hostsOnly`). */
const HOST_SCENARIOS = [
  'host-boot-batches',
  'host-boot-batches-timeout',
  'host-boot-retry',
  'host-v2',
  'host-v2-spec-in-input',
  'host-boot-steps-implied',
];

type RecordedHistory = Parameters<typeof taskBuildIds>[0];

interface Recorded extends HistoryAndWorkflowId {
  file: string;
  /** The file as recorded, for the test that edits one. */
  json: unknown;
}

/** Every recorded history; `rollout__sim1__abc.json` holds the history of `rollout/sim1/abc`. */
async function recorded(): Promise<Recorded[]> {
  const all: Recorded[] = [];
  for (const scenario of (await readdir(historiesDir, { withFileTypes: true })).filter((d) =>
    d.isDirectory(),
  )) {
    for (const name of (await readdir(path.join(historiesDir, scenario.name))).filter((f) =>
      f.endsWith('.json'),
    )) {
      const file = path.join(scenario.name, name);
      const json: unknown = JSON.parse(await readFile(path.join(historiesDir, file), 'utf8'));
      const workflowId = path.basename(name, '.json').replaceAll('__', '/');
      all.push({ file, workflowId, json, history: historyFromJSON(json) });
    }
  }
  return all.sort((a, b) => a.file.localeCompare(b.file));
}

const bundle = (workflowsPath: string) =>
  bundleWorkflowCode({ workflowsPath, logger: new DefaultLogger('WARN') });

/** Replays histories one after another with one replay worker; returns `file: error` per failure. */
async function replay(workflowBundle: { code: string }, histories: Recorded[]): Promise<string[]> {
  const failures: string[] = [];
  let i = 0;
  for await (const result of Worker.runReplayHistories({ workflowBundle, replayName: 'replay' }, histories)) {
    const { file } = histories[i++] ?? { file: result.workflowId };
    if (result.error) failures.push(`${file}: ${result.error.name}: ${result.error.message}`);
  }
  assert.equal(i, histories.length, 'a result for every history');
  return failures;
}

describe('replay of recorded workflow histories', () => {
  let histories: Recorded[];
  let current: { code: string };
  before(async () => {
    // A failed replay logs its workflow task failure as a warning; the assertions say what failed.
    Runtime.install({
      logger: new DefaultLogger('ERROR'),
      telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' } } },
    });
    histories = await recorded();
    current = await bundle(workflowsPath);
  });

  test('every scenario has a rollout history and host histories', () => {
    for (const scenario of SCENARIOS) {
      const files = histories.filter((h) => h.file.startsWith(`${scenario}${path.sep}`));
      assert.ok(
        files.some((h) => h.workflowId.startsWith('rollout/')),
        `${scenario}: no rollout history (npm run record:histories)`,
      );
      assert.ok(
        files.some((h) => h.workflowId.startsWith('host/')),
        `${scenario}: no host history`,
      );
    }
  });

  test('a rollout that read its plan from the store and continued as new is recorded, every run', () => {
    const runs = histories.filter((h) =>
      h.file.startsWith(`rollout-stored-plan-continue-as-new${path.sep}rollout__`),
    );
    assert.ok(runs.length >= 3, `at least two continue-as-new boundaries (${runs.length} runs)`);
    const inputs = runs.map((r) => startInput(r.json));
    assert.ok(
      inputs.every((input) => typeof input.planKey === 'string' && input.plan === undefined),
      'every run started from a stored plan',
    );
    assert.ok(
      inputs.some((input) => typeof input.carry?.states === 'string' && input.carry.hosts === undefined),
      'a continued run carries host states, not host records',
    );
  });

  test('a rollout that moved from worker version N to N+1 mid-run is recorded, and hosts N ran', () => {
    const files = histories.filter((h) => h.file.startsWith(`rollout-worker-upgrade${path.sep}`));
    const rollout = files.find((h) => h.workflowId.startsWith('rollout/'));
    assert.ok(rollout, 'npm run record:histories -- rollout-worker-upgrade');
    const versions = [...new Set(taskBuildIds(rollout.history as RecordedHistory))];
    assert.equal(versions.length, 2, `tasks of two versions: ${versions.join(', ')}`);
    assert.equal(versions[1], 'record-next', 'N+1 completed its last tasks');
    const hosts = files.filter((h) => h.workflowId.startsWith('host/'));
    assert.ok(hosts.length > 0);
    for (const host of hosts)
      assert.deepEqual([...new Set(taskBuildIds(host.history as RecordedHistory))], [versions[0]]);
  });

  test('the host workflow with batched boot events is recorded, succeeded and failed', () => {
    for (const scenario of HOST_SCENARIOS) {
      const files = histories.filter((h) => h.file.startsWith(`${scenario}${path.sep}`));
      assert.ok(
        files.some((h) => JSON.stringify(h.json).includes('"boot-events"')),
        `${scenario}: no host history with a boot-events signal (npm run record:histories -- ${scenario})`,
      );
    }
  });

  test('host histories of both shapes: the spec loaded by a local activity, and given in the input', () => {
    const marked = (scenario: string) =>
      histories
        .filter((h) => h.file.startsWith(`${scenario}${path.sep}host__`))
        .map((h) => JSON.stringify(h.json).includes('EVENT_TYPE_MARKER_RECORDED'));
    assert.ok(marked('host-v2').length > 0 && marked('host-v2').every(Boolean), 'host-v2: loadHostSpec');
    const given = marked('host-v2-spec-in-input');
    assert.ok(given.length > 0 && !given.some(Boolean), 'host-v2-spec-in-input: no marker');
  });

  test('every recorded history replays against the current workflows', async () => {
    assert.deepEqual(
      await replay(current, histories),
      [],
      'a change to the workflows is not deterministic: guard it with patched()',
    );
  });

  test('the harness catches an edited history: a renamed child workflow type', async () => {
    const rollout = rolloutOf(histories);
    const json = structuredClone(rollout.json) as {
      events: Record<string, { workflowType?: { name: string } }>[];
    };
    const started = json.events.find((e) => e.startChildWorkflowExecutionInitiatedEventAttributes);
    assert.ok(started?.startChildWorkflowExecutionInitiatedEventAttributes?.workflowType);
    started.startChildWorkflowExecutionInitiatedEventAttributes.workflowType.name = 'renamedHostWorkflow';
    const failures = await replay(current, [{ ...rollout, history: historyFromJSON(json) }]);
    assert.equal(failures.length, 1);
    assert.match(failures[0] ?? '', /DeterminismViolationError/);
  });

  test('the harness catches a change: an extra timer in siteRolloutWorkflow is a determinism violation', async () => {
    const rollout = rolloutOf(histories);
    const workflowBundle = await bundle(alteredWorkflowsPath);
    await assert.rejects(
      Worker.runReplayHistory(
        { workflowBundle, replayName: 'replay-altered' },
        rollout.history,
        rollout.workflowId,
      ),
      DeterminismViolationError,
    );
  });
});

/** The decoded input a recorded run started with (proto JSON: payload data in base64). */
function startInput(json: unknown): {
  planKey?: unknown;
  plan?: unknown;
  carry?: { states?: unknown; hosts?: unknown };
} {
  type Started = { input?: { payloads?: { data: string }[] } };
  const events = (json as { events: { workflowExecutionStartedEventAttributes?: Started }[] }).events;
  const data = events[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0]?.data ?? 'e30=';
  return JSON.parse(Buffer.from(data, 'base64').toString('utf8')) as ReturnType<typeof startInput>;
}

function rolloutOf(histories: Recorded[]): Recorded {
  const rollout = histories.find((h) => h.file.startsWith(`rollout-completed${path.sep}rollout__`));
  assert.ok(rollout, 'no recorded rollout history of rollout-completed (npm run record:histories)');
  return rollout;
}
