import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { applyWorkflowId, SERVER_TASK_QUEUE, type SiteRolloutResult } from '../../schemas/rollout';
import type { ApplyCommitResult } from '../../workflows/apply-commit';
import { startVaquero } from '../helpers/vaquero-env';

const fixture = fileURLToPath(new URL('../fixtures/sot-sim', import.meta.url));
const TOKEN = 'vq-secret-7f3a9c1e-do-not-log';

/** Every string and every byte payload (decoded) in a history, so a search sees what a payload holds. */
function everyText(value: unknown, out: string[] = []): string {
  if (value instanceof Uint8Array) out.push(Buffer.from(value).toString('utf8'));
  else if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) for (const v of value) everyText(v, out);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) everyText(v, out);
  return out.join('\n');
}

test('secrets are resolved on the agent at run time and never written to workflow history', async (t) => {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(req.headers.authorization ?? '');
    res.writeHead(req.headers.authorization === `Bearer ${TOKEN}` ? 200 : 401).end('{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const port = (server.address() as AddressInfo).port;

  const env = await startVaquero(t, {
    fixture,
    sites: ['sim1'],
    simTimeScale: 0.005,
    secretsEnv: { VQ_TEST_TOKEN: TOKEN },
  });
  if (!env) return;
  // One host group only, so the test stays short; its validation calls the local server with the token.
  const boot = path.join(env.sot, 'boot/sim-edge.yaml');
  const text = await readFile(boot, 'utf8');
  await writeFile(
    boot,
    text.replace(
      'validation:\n',
      `validation:\n  - name: api-health\n    type: http\n    url: "http://127.0.0.1:${port}/health/{{ host.name }}"\n    bearer_token: { env: VQ_TEST_TOKEN }\n    timeout: 10s\n`,
    ),
  );
  await writeFile(
    path.join(env.sot, 'workflows/edge.yaml'),
    (await readFile(path.join(env.sot, 'workflows/edge.yaml'), 'utf8')).replace('sim-node', 'sim-edge'),
  );
  const sha = await env.commit('edge hosts validate against an API with a token');
  const apply = await env.client.workflow.start('applyCommitWorkflow', {
    taskQueue: SERVER_TASK_QUEUE,
    workflowId: applyWorkflowId(sha),
    args: [{ commit: sha, source: env.sot }],
  });
  const { rollouts } = (await apply.result()) as ApplyCommitResult;
  const rolloutId = rollouts[0]?.workflowId ?? '';
  const result = (await env.client.workflow.getHandle(rolloutId).result()) as SiteRolloutResult;
  assert.equal(result.phase, 'completed');
  assert.equal(
    seen.filter((h) => h === `Bearer ${TOKEN}`).length,
    2,
    'both edge hosts called with the token',
  );

  const ids = [
    applyWorkflowId(sha),
    rolloutId,
    ...['edge-01', 'edge-02', 'cp-01'].map((h) => `host/sim1/${h}/${sha.slice(0, 7)}`),
  ];
  for (const id of ids) {
    const history = everyText(await env.client.workflow.getHandle(id).fetchHistory());
    assert.ok(!history.includes(TOKEN), `${id}: the secret value is in the history`);
    if (id.includes('edge-01')) assert.match(history, /VQ_TEST_TOKEN/, 'the history holds the reference');
  }
});
