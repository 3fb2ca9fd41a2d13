import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { appendFile, cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { FileModelStore } from '../../activities/store/file-store';
import { applyWorkflowId } from '../../schemas/rollout';
import { parseServerConfig, type LocalSource } from '../../server/config';
import type { Leadership } from '../../server/ha/leader';
import { startServer } from '../../server/main';
import { pollWhileLeader } from '../../server/poller';
import { ensureNamespace, registerSearchAttributes } from '../../server/temporal-setup';
import { memoryLog } from '../helpers/server-http';
import { connectOrSkip, temporalAddress, workflowBundle } from '../helpers/temporal';

const run = promisify(execFile);
const fixture = fileURLToPath(new URL('../fixtures/sot-sim', import.meta.url));
// A namespace of these tests' own: no other test's server worker picks up the applies started here.
const NAMESPACE = 'vaquero-h4-poller';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'vaquero-h4-poll-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function terminateRunning(client: Client, reason: string) {
  for await (const wf of client.workflow.list({ query: 'ExecutionStatus = "Running"' }))
    await client.workflow
      .getHandle(wf.workflowId)
      .terminate(reason)
      .catch(() => undefined);
}

/**
 * A client of the namespace, which starts and ends empty: a worker of a test would run workflows
 * an earlier run left behind. Runs before the test's own clean-ups (server.stop), being first.
 */
async function namespaceClient(t: TestContext): Promise<Client> {
  // A connection of our own: connectOrSkip's is closed before this clean-up runs.
  const connection = await Connection.connect({ address: temporalAddress() });
  await ensureNamespace(connection, NAMESPACE, 1);
  await registerSearchAttributes(connection, NAMESPACE);
  const client = new Client({ connection, namespace: NAMESPACE });
  await terminateRunning(client, 'left over by an earlier run');
  t.after(async () => {
    await terminateRunning(client, 'test finished');
    await connection.close();
  });
  return client;
}

function switchableLeadership(leading: boolean): Leadership & { set(leader: boolean): void } {
  const listeners = new Set<(leader: boolean) => void>();
  return {
    isLeader: () => leading,
    onChange: (l) => (listeners.add(l), () => listeners.delete(l)),
    close: () => Promise.resolve(),
    set(leader) {
      leading = leader;
      for (const l of listeners) l(leader);
    },
  };
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(100);
  }
}

const started = (client: Client, sha: string) =>
  client.workflow
    .getHandle(applyWorkflowId(sha))
    .describe()
    .then(
      () => true,
      (err: unknown) => {
        if (err instanceof WorkflowNotFoundError) return undefined;
        throw err;
      },
    );

/** The SoT directory the apply workflow was asked to read (its input). */
async function applySource(client: Client, sha: string): Promise<string> {
  const history = await client.workflow.getHandle(applyWorkflowId(sha)).fetchHistory();
  const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  assert.ok(payload);
  return defaultPayloadConverter.fromPayload<{ source: string }>(payload).source;
}

async function gitRepo(t: TestContext) {
  const repo = await tempDir(t);
  const git = async (...args: string[]) =>
    (
      await run('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@localhost', ...args])
    ).stdout.trim();
  await git('init', '--quiet', '--initial-branch=main');
  await cp(fixture, path.join(repo, 'sot'), { recursive: true });
  const commit = async (message: string) => {
    await appendFile(path.join(repo, 'sot/os/sim.yaml'), `# ${message}\n`);
    await git('add', '--all');
    await git('commit', '--quiet', '-m', message);
    return git('rev-parse', 'HEAD');
  };
  return { repo, git, commit };
}

describe('local sources, polled', () => {
  test('each new commit on the branch of a git repository starts apply/<sha>, only while leading', async (t) => {
    if (!(await connectOrSkip(t))) return;
    const client = await namespaceClient(t);
    const { repo, git, commit } = await gitRepo(t);
    const source: LocalSource = {
      kind: 'local',
      name: 'lab',
      dir: repo,
      path: 'sot',
      branch: 'main',
      track: 'auto',
      poll_seconds: 0.2,
    };
    const leadership = switchableLeadership(true);
    const { log, lines } = memoryLog();
    const pollers = pollWhileLeader(leadership, [source], {
      temporal: client,
      storeDir: await tempDir(t),
      log,
    });
    t.after(() => pollers.close());

    const first = await commit('first');
    await until('apply of the first commit', () => started(client, first));
    assert.equal(await applySource(client, first), path.join(repo, 'sot'));
    const second = await commit('second');
    await until('apply of the second commit', () => started(client, second));

    // A commit on another branch is not applied.
    await git('checkout', '--quiet', '-b', 'topic');
    const topic = await commit('topic');
    await git('checkout', '--quiet', 'main');

    leadership.set(false);
    const third = await commit('third, while following');
    await delay(1_500);
    assert.equal(await started(client, third), undefined, 'a follower does not poll');
    leadership.set(true);
    await until('apply of the third commit, once leading', () => started(client, third));
    assert.equal(await started(client, topic), undefined);
    const applies = lines.filter((l) => l.msg === 'local source changed: apply started');
    assert.deepEqual(
      applies.map((l) => l.fields.commit),
      [first, second, third],
    );
  });

  test('a plain directory is snapshotted: the server applies exactly the content it saw', async (t) => {
    if (!(await connectOrSkip(t))) return;
    const client = await namespaceClient(t);
    const dir = await tempDir(t);
    const sot = path.join(dir, 'sot');
    await cp(fixture, sot, { recursive: true });
    const store = new FileModelStore(path.join(dir, 'store'));
    const config = parseServerConfig({
      listen: { port: 0 },
      temporal: { address: temporalAddress(), namespace: NAMESPACE, setup: false },
      store: { dir: path.join(dir, 'store') },
      sources: [{ name: 'lab', kind: 'local', dir: sot, poll_seconds: 0.2 }],
      api: { tokens: [{ name: 'ops', token: { env: 'UNUSED' } }] },
    });
    const { log } = memoryLog();
    const server = await startServer(config, {
      store,
      log,
      secrets: { webhooks: new Map(), apiTokens: [{ name: 'ops', token: 'unused-token' }] },
      workflows: { workflowBundle: await workflowBundle() },
    });
    t.after(() => server.stop());

    // prepareCommit read the snapshot and stored it as a revision; the plan started the rollouts.
    const first = await until('the first snapshot applied', () => store.getApplied(), 60_000);
    const model = await store.getRevision(first);
    assert.deepEqual(Object.keys(model?.sites ?? {}), ['sim1']);
    assert.equal(await applySource(client, first), path.join(dir, 'store/snapshots/lab'));

    const before = model?.sites.sim1?.hosts.length;
    await cp(path.join(sot, 'sites/sim1/hosts/edge.yaml'), path.join(dir, 'edge.yaml.bak'));
    await rm(path.join(sot, 'sites/sim1/hosts/edge.yaml'));
    const second = await until(
      'the second snapshot applied',
      async () => {
        const applied = await store.getApplied();
        return applied && applied !== first ? applied : undefined;
      },
      60_000,
    );
    const after = (await store.getRevision(second))?.sites.sim1?.hosts.length;
    assert.ok(before !== undefined && after !== undefined && after < before, `${after} < ${before} hosts`);
    const { stdout } = await run('git', ['-C', path.join(dir, 'store/snapshots/lab'), 'log', '--format=%H']);
    assert.deepEqual(stdout.trim().split('\n'), [second, first]);
  });
});
