// Each server counts the activities its `vaquero-server` worker ran: with two servers on one queue,
// /metrics shows which did the work (docs/api.md, "Metrics"; the rollout benchmark's --servers).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { Client } from '@temporalio/client';
import { applyWorkflowId, SERVER_TASK_QUEUE } from '../../schemas/rollout';
import { parseServerConfig } from '../../server/config';
import { startServer } from '../../server/main';
import { API_TOKEN, memoryLog } from '../helpers/server-http';
import { connectOrSkip, temporalAddress, workflowBundle } from '../helpers/temporal';

const NAMESPACE = process.env.VAQUERO_TEST_NAMESPACE ?? 'vaquero-test';

test('/metrics counts the activities this server ran, by activity and outcome', async (t) => {
  const connection = await connectOrSkip(t);
  if (!connection) return;
  const dir = await mkdtemp(path.join(tmpdir(), 'vaquero-activity-metrics-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  // An invalid SoT: the apply validates it in one activity and stops there, starting no rollout.
  const repo = path.join(dir, 'repo');
  await mkdir(path.join(repo, 'sites/a'), { recursive: true });
  await writeFile(path.join(repo, 'sites/a/site.yaml'), 'id: [not, a, site]\n');
  const git = (...args: string[]) =>
    execFileSync('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@example.net', ...args])
      .toString()
      .trim();
  execFileSync('git', ['init', '-q', '-b', 'main', repo]);
  git('add', '-A');
  git('commit', '-q', '-m', 'invalid');
  const sha = git('rev-parse', 'HEAD');

  const config = parseServerConfig({
    listen: { port: 0 },
    temporal: { address: temporalAddress(), namespace: NAMESPACE },
    store: { dir: path.join(dir, 'store') },
    api: { tokens: [{ name: 'ops', token: { env: 'UNUSED' } }] },
  });
  const server = await startServer(config, {
    log: memoryLog().log,
    secrets: { webhooks: new Map(), apiTokens: [{ name: 'ops', token: API_TOKEN }] },
    workflows: { workflowBundle: await workflowBundle() },
  });
  t.after(() => server.stop());
  const before = await (await fetch(`${server.url}/metrics`)).text();
  assert.doesNotMatch(before, /vaquero_activities_total\{/, 'nothing counted before any work');

  const client = new Client({ connection, namespace: NAMESPACE });
  const apply = await client.workflow.start('applyCommitWorkflow', {
    taskQueue: SERVER_TASK_QUEUE,
    workflowId: applyWorkflowId(sha),
    args: [{ commit: sha, source: repo }],
  });
  t.after(() => apply.terminate('test finished').catch(() => undefined));
  await apply.result().catch(() => undefined);

  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  assert.match(metrics, /^vaquero_activities_total\{activity="prepareCommit",outcome="completed"\} 1$/m);
});
