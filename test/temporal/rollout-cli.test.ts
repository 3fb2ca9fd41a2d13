// `vaquero rollout ...` against real rollouts of sim hosts on the Temporal dev server.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { main } from '../../cli/main';
import type { Io } from '../../cli/io';
import type { CliConfigInput } from '../../schemas/cli-config';
import { applyWorkflowId, SERVER_TASK_QUEUE, type RolloutStatus } from '../../schemas/rollout';
import type { ApplyCommitResult } from '../../workflows/apply-commit';
import { statusQuery } from '../../workflows/messages';
import { temporalAddress } from '../helpers/temporal';
import { startVaquero, type VaqueroEnv } from '../helpers/vaquero-env';

const fixture = fileURLToPath(new URL('../fixtures/sot-sim', import.meta.url));
const bin = fileURLToPath(new URL('../../bin/vaquero.mjs', import.meta.url));
const FAST = { dhcp: 5_000, ipxe: 5_000, kernel: 5_000, checkpoint: 5_000 };

interface CliRun {
  code: number;
  out: string;
  err: string;
}

async function vaquero(argv: string[], config: CliConfigInput = {}): Promise<CliRun> {
  let out = '';
  let err = '';
  const io: Io = { out: (text) => void (out += text), err: (text) => void (err += text), cwd: () => '/' };
  const code = await main(argv, io, config);
  return { code, out, err };
}

/** `vaquero rollout <args> --address <dev server> --namespace <the test's>`. */
function rollout(env: VaqueroEnv, ...args: string[]): Promise<CliRun> {
  return vaquero(['rollout', ...args, '--address', temporalAddress(), '--namespace', env.namespace]);
}

function assertOneLineError(run: CliRun, code: number, pattern: RegExp): void {
  assert.equal(run.code, code, `exit code; stderr: ${run.err}`);
  assert.equal(run.err.trimEnd().split('\n').length, 1, `one line on stderr, got:\n${run.err}`);
  assert.match(run.err, pattern);
}

/** Applies a commit with short boot timeouts, as rollout.test.ts does; returns the site's rollout id. */
async function startRollout(env: VaqueroEnv): Promise<{ id: string; sha: string }> {
  // A unique message: two tests in the same second would otherwise commit the same SHA.
  const sha = await env.commit(`rollout cli ${randomUUID()}`);
  const handle = await env.client.workflow.start('applyCommitWorkflow', {
    taskQueue: SERVER_TASK_QUEUE,
    workflowId: applyWorkflowId(sha),
    args: [{ commit: sha, source: env.sot, timeouts: FAST }],
  });
  const applied = (await handle.result()) as ApplyCommitResult;
  const id = applied.rollouts[0]?.workflowId;
  assert.ok(id, 'the commit starts a rollout');
  return { id, sha };
}

async function waitForPhase(env: VaqueroEnv, id: string, phase: RolloutStatus['phase']): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if ((await env.client.workflow.getHandle(id).query(statusQuery)).phase === phase) return;
    await delay(100);
  }
  throw new Error(`${id} never reached ${phase}`);
}

/** Visibility lags a moment behind a workflow's start. */
async function listUntil(env: VaqueroEnv, id: string, ...args: string[]): Promise<CliRun> {
  for (let i = 0; i < 50; i++) {
    const run = await rollout(env, 'list', ...args);
    assert.equal(run.code, 0, run.err);
    if (run.out.includes(id)) return run;
    await delay(200);
  }
  throw new Error(`rollout list never showed ${id}`);
}

/** `vaquero rollout watch` with no rollout, as a user runs it: its own process, stopped by Ctrl-C. */
function watchEverything(t: TestContext, env: VaqueroEnv) {
  const args = ['rollout', 'watch', '--interval', '200ms', '--address', temporalAddress()];
  const child = spawn(process.execPath, [bin, ...args, '--namespace', env.namespace], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => child.kill('SIGKILL'));
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    exited,
    out: () => out,
    async until(pattern: RegExp): Promise<void> {
      for (let i = 0; i < 600 && !pattern.test(out); i++) await delay(100);
      assert.match(out, pattern, `watch printed, on stderr: ${err}`);
    },
  };
}

async function approvalRequired(env: VaqueroEnv): Promise<void> {
  const file = path.join(env.sot, 'sites/sim1/site.yaml');
  const text = await readFile(file, 'utf8');
  const next = text.replace('approval_required: false', 'approval_required: true');
  assert.notEqual(next, text, 'the fixture site has an approval policy to flip');
  await writeFile(file, next);
}

describe('vaquero rollout on a real Temporal server with sim hosts', () => {
  test('list and status show a rollout waiting for approval; approve moves it on; watch follows it to the end', async (t) => {
    const env = await startVaquero(t, { fixture, sites: ['sim1'], simTimeScale: 0.005 });
    if (!env) return;
    await approvalRequired(env);
    const { id, sha } = await startRollout(env);
    await waitForPhase(env, id, 'waiting-approval');

    const listed = await listUntil(env, id);
    const row = listed.out.split('\n').find((line) => line.includes(id)) ?? '';
    assert.match(
      row,
      new RegExp(`${id}\\s+sim1\\s+${sha.slice(0, 7)}\\s+waiting-approval\\s+1/20 done\\s+\\d{4}-`),
    );
    const fromEnv = await vaquero(['rollout', 'list', '--site', 'sim1', '--json'], {
      temporalAddress: temporalAddress(),
      temporalNamespace: env.namespace,
    });
    assert.equal(fromEnv.code, 0, fromEnv.err);
    const rows = JSON.parse(fromEnv.out) as {
      workflowId: string;
      phase: string;
      counts: { total: number };
    }[];
    assert.deepEqual(
      rows.filter((r) => r.workflowId === id).map((r) => [r.phase, r.counts.total]),
      [['waiting-approval', 20]],
    );

    const status = await rollout(env, 'status', id);
    assert.equal(status.code, 0, status.err);
    assert.match(status.out, /phase: +waiting-approval, waiting for: approve signal/);
    assert.match(status.out, /wave: +1\/7/);
    assert.match(status.out, /20 hosts: 1 succeeded, 0 running, 0 failed, 19 pending/);
    assert.match(status.out, new RegExp(`next: +vaquero rollout approve ${id}`));
    assert.match(status.out, /^ {2}cp-01 +\S+ +1 +succeeded *$/m);
    assert.doesNotMatch(status.out, /wk-01/, 'pending hosts are left out of the table');
    const bySite = await rollout(env, 'status', 'sim1');
    assert.ok(bySite.out.startsWith(`${id}:`), `a site stands for its running rollout:\n${bySite.out}`);

    const approved = await rollout(env, 'approve', id);
    assert.equal(approved.code, 0, approved.err);
    assert.match(
      approved.out,
      new RegExp(`^${id}: approve done; now running, wave 1/7, 20 hosts: 1 succeeded`),
    );
    const watched = await rollout(env, 'watch', id, '--interval', '200ms');
    assert.equal(watched.code, 0, watched.err);
    const lines = watched.out.trimEnd().split('\n');
    assert.equal(lines.at(-1), `${id} completed: 20 succeeded, 0 failed, 0 not started`);
    const progress = lines.filter((l) => /^\d\d:\d\d:\d\d running, wave \d\/7, 20 hosts: /.test(l));
    assert.ok(progress.length >= 2, `a line per change of the rollout:\n${watched.out}`);
    assert.ok(
      lines.some((l) => /^\d\d:\d\d:\d\d {3}wk-\d\d succeeded$/.test(l)),
      `a line per host change:\n${watched.out}`,
    );

    const late = await rollout(env, 'pause', id);
    assertOneLineError(late, 1, /is closed \(completed\): a closed rollout takes no pause/);
    const ended = await rollout(env, 'status', id, '--json');
    assert.equal((JSON.parse(ended.out) as { phase: string; execution: string }).phase, 'completed');
  });

  test('a halted rollout: status says why, retry-host refuses a host that did not fail, abort ends it', async (t) => {
    const env = await startVaquero(t, { fixture, sites: ['sim1'], simTimeScale: 0.005 });
    if (!env) return;
    env.fault('sim1/cp-01', 'checkpoint');
    const { id } = await startRollout(env);
    await waitForPhase(env, id, 'halted');

    const status = await rollout(env, 'status', id);
    assert.equal(status.code, 0, status.err);
    assert.match(status.out, /phase: +halted, waiting for: the canary failed: retry-host or abort/);
    assert.match(
      status.out,
      /cp-01 +\S+ +1 +failed +stage 1 checkpoint +no checkpoint event from \S+ within 5 s/,
    );
    assert.match(status.out, new RegExp(`next: +vaquero rollout retry-host ${id} cp-01`));

    const wrongHost = await rollout(env, 'retry-host', id, 'wk-01');
    assertOneLineError(wrongHost, 1, /host wk-01 is pending, not failed/);
    const aborted = await rollout(env, 'abort', id, '--reason', 'bad image');
    assert.equal(aborted.code, 0, aborted.err);
    assert.match(aborted.out, new RegExp(`^${id}: abort done; now aborted, wave 1/7`));
    const watched = await rollout(env, 'watch', id, '--interval', '200ms');
    assert.equal(watched.code, 1, 'watch fails for a rollout that did not complete');
    assert.match(
      watched.out,
      new RegExp(`${id} aborted: 0 succeeded, 1 failed, 19 not started \\(failed: cp-01\\)\\n$`),
    );
    const described = await env.client.workflow.getHandle(id).describe();
    assert.equal(described.status.name, 'COMPLETED');

    assertOneLineError(
      await rollout(env, 'status', 'rollout/nowhere/0000000'),
      1,
      new RegExp(`^vaquero rollout: no workflow "rollout/nowhere/0000000" in namespace ${env.namespace}\n$`),
    );
    assertOneLineError(
      await rollout(env, 'abort', 'nowhere'),
      1,
      /^vaquero rollout: no running rollout for site nowhere in namespace /,
    );
  });

  test('watch without a rollout waits for one, follows it as it starts and runs, says when it closes', async (t) => {
    const env = await startVaquero(t, { fixture, sites: ['sim1'], simTimeScale: 0.005 });
    if (!env) return;
    await approvalRequired(env);
    const watch = watchEverything(t, env);
    await watch.until(/no running rollouts in namespace \S+; waiting for one to start/);
    const { id } = await startRollout(env);
    await waitForPhase(env, id, 'waiting-approval');
    await watch.until(
      new RegExp(`^\\d\\d:\\d\\d:\\d\\d ${id}: waiting-approval \\(waiting for: approve signal`, 'm'),
    );

    assert.equal((await rollout(env, 'approve', id)).code, 0);
    await watch.until(new RegExp(`${id} completed: 20 succeeded, 0 failed, 0 not started\\n`));
    const lines = watch.out().split('\n');
    const progress = lines.filter((l) => l.includes(`${id}: running, wave `));
    assert.ok(progress.length >= 2, `a line per change of the rollout:\n${watch.out()}`);
    assert.ok(
      lines.some((l) => new RegExp(`^\\d\\d:\\d\\d:\\d\\d ${id}: {3}wk-\\d\\d succeeded$`).test(l)),
      `a line per host change:\n${watch.out()}`,
    );
    await watch.until(
      /no running rollouts in namespace \S+; waiting for one to start[^]*completed[^]*waiting for one to start/,
    );

    watch.child.kill('SIGINT');
    assert.equal(await watch.exited, 0, 'Ctrl-C ends the watch, not a failure');
  });

  test('an unreachable server or a bad command line: one line on stderr, no stack trace', async () => {
    assertOneLineError(
      await vaquero(['rollout', 'list', '--address', '127.0.0.1:1']),
      1,
      /^vaquero rollout: cannot reach the Temporal server at 127\.0\.0\.1:1: /,
    );
    assertOneLineError(
      await vaquero(['rollout', 'retry-host', 'rollout/x/y']),
      2,
      /usage: vaquero rollout retry-host/,
    );
    assertOneLineError(await vaquero(['rollout', 'watch', 'x', '--interval', 'soon']), 2, /--interval soon/);
  });
});
