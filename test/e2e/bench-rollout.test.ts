// scripts/bench/rollout.ts end to end at a tiny scale: two real `vaquero server` processes share the
// vaquero-server worker, the site rollout continues as new, and the figures count every run of
// every workflow. Nothing here judges the figures themselves: timing is the script's job (issue 12).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import type { RunFigures } from '../../scripts/bench/lib/rollout-run';
import { temporalUp } from '../helpers/server-process';
import { repoRoot } from '../helpers/sot';

const NAMESPACE = process.env.VAQUERO_TEST_NAMESPACE ?? 'vaquero-test';
const HOSTS = 24;

function bench(args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', path.join(repoRoot, 'scripts/bench/rollout.ts'), ...args],
      { cwd: repoRoot, timeout: 300_000, maxBuffer: 16 * 1024 * 1024 },
      (err, out, errText) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, out, err: errText });
      },
    );
  });
}

test('the rollout benchmark: two server processes share the work, every run counted', async (t) => {
  if (!(await temporalUp())) {
    t.skip('no Temporal server (bash scripts/temporal-dev.sh start)');
    return;
  }
  // Four at a time past a 40-event limit: the rollout continues as new two or three times.
  const args = ['--run', `${HOSTS}:1:4`, '--servers', '2', '--history-limit', '40'];
  const { code, out, err } = await bench([...args, '--namespace', NAMESPACE, '--sot', '200']);
  assert.equal(code, 0, `${out}\n${err}`);
  const line = out.split('\n').find((l) => l.startsWith('RESULT '));
  assert.ok(line, `no RESULT line in:\n${out}`);
  const { runs, sot } = JSON.parse(line.slice('RESULT '.length)) as {
    runs: RunFigures[];
    sot: { hosts: number; validate: { code: number }[] }[];
  };
  const [run] = runs;
  assert.ok(run);
  assert.equal(run.phase, 'completed');
  assert.equal(run.succeeded, HOSTS);

  // Every run of every workflow: the apply, the rollout's runs, each host.
  const h = run.history;
  assert.ok(h.rolloutRuns >= 2, `the rollout continued as new (runs: ${h.rolloutRuns})`);
  assert.equal(h.workflows, HOSTS + 2);
  assert.equal(h.runs, h.workflows + h.rolloutRuns - 1);
  assert.equal(
    h.events,
    Object.values(h.eventsByKind).reduce((a, b) => a + b, 0),
  );
  // The largest single run is smaller than the rollout's runs together: they were summed.
  assert.ok(h.largestRun.events > 0 && h.largestRun.events < (h.eventsByKind.rollout ?? 0));
  assert.ok(h.largestPayload && h.largestPayload.bytes > 0 && h.largestPayload.field, 'a payload found');

  // Both servers did work, and their /metrics agree with what the histories say they ran.
  const servers = run.processes.filter((p) => p.activitiesCounted);
  assert.equal(servers.length, 2, JSON.stringify(run.processes));
  for (const s of servers) {
    assert.ok(s.workflowTasks > 0, `${s.name} completed workflow tasks`);
    const counted = (s.activitiesCounted?.completed ?? 0) + (s.activitiesCounted?.failed ?? 0);
    assert.ok(counted > 0, `${s.name} ran activities`);
    assert.equal(counted, (s.activities['vaquero-server'] ?? 0) + s.localActivities, s.name);
  }
  assert.equal(run.processes.find((p) => p.pid !== 0 && !p.activitiesCounted)?.workflowTasks, 0);
  assert.ok(out.includes('| activities per server process'), 'the side-by-side table is printed');

  assert.deepEqual(
    sot.map((s) => [s.hosts, s.validate[0]?.code]),
    [[200, 0]],
  );
});

test('the rollout benchmark refuses a bad --run with a clear message', async () => {
  const { code, err } = await bench(['--run', '100:ten:5']);
  assert.equal(code, 2);
  assert.match(err, /--run boot: ten is not a positive whole number/);
});
