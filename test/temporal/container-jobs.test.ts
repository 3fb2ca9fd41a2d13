// Issue 14 item 5: a boot profile's container pre-shutdown and validation jobs run by a real agent
// worker on Debian's podman, in the image built here (scripts/install-job-image.sh), on a real host
// workflow; their output is kept in the workflow's history (the jobs activity's result).
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { FileModelStore } from '../../activities/store/file-store';
import { hostWorkflowId, SERVER_TASK_QUEUE, type ReprovisionHostResult } from '../../schemas/rollout';
import { validateSot } from '../../sot/validate';
import { podmanJobImage } from '../helpers/podman';
import { startVaquero } from '../helpers/vaquero-env';

const fixture = fileURLToPath(new URL('../fixtures/sot-sim', import.meta.url));
const COMMIT = 'c0a7a1e4e0001';

const profile = (image: string) => `id: sim-containers
os: sim-linux
pre_shutdown:
  - name: drain
    type: container
    image: ${image}
    network: none
    env: { PHASE: pre-shutdown }
    args: ["sh", "-c", "echo draining {{ host.name }} in $PHASE on $(cat /etc/hostname 2>/dev/null || hostname)"]
    timeout: 2m
validation:
  - name: installed
    type: container
    image: ${image}
    network: none
    args: ["sh", "-c", "echo validated $VAQUERO_HOST at $VAQUERO_IPV4"]
    timeout: 2m
`;

test('container pre-shutdown and validation jobs run on podman; their output is in the history', async (t) => {
  const image = await podmanJobImage(t);
  if (!image) return;
  const env = await startVaquero(t, { fixture, sites: ['sim1'], simTimeScale: 0.005 });
  if (!env) return;
  await writeFile(path.join(env.sot, 'boot/sim-containers.yaml'), profile(image));
  await writeFile(
    path.join(env.sot, 'workflows/edge.yaml'),
    'id: edge\nboots: [sim-containers]\nrollout: { max_concurrent: 1 }\n',
  );
  const { model, diagnostics } = await validateSot(env.sot);
  assert.ok(model, JSON.stringify(diagnostics));
  await new FileModelStore(path.join(env.stateDir, 'store')).putRevision(COMMIT, model);

  const handle = await env.client.workflow.start('reprovisionHostWorkflowV2', {
    taskQueue: SERVER_TASK_QUEUE,
    workflowId: hostWorkflowId('sim1', 'edge-01', COMMIT),
    args: [{ site: 'sim1', host: 'edge-01', commit: COMMIT }],
  });
  const result = (await handle.result()) as ReprovisionHostResult;
  assert.equal(result.ok, true, result.error);
  assert.deepEqual(
    result.jobs.map((j) => [j.name, j.type, j.ok]),
    [
      ['drain', 'container', true],
      ['installed', 'container', true],
    ],
  );
  assert.match(result.jobs[0]?.output ?? '', /^draining edge-01 in pre-shutdown on \S+$/m);
  assert.match(result.jobs[1]?.output ?? '', /^validated edge-01 at 10\.99\.0\.29$/m);

  // The history holds each job's output: the jobs activity's results, as recorded.
  const recorded = ((await handle.fetchHistory()).events ?? []).flatMap((e) => {
    const payload = e.activityTaskCompletedEventAttributes?.result?.payloads?.[0]?.data;
    return payload ? [Buffer.from(payload).toString('utf8')] : [];
  });
  assert.ok(
    recorded.some((r) => r.includes('draining edge-01 in pre-shutdown')),
    'pre-shutdown output',
  );
  assert.ok(
    recorded.some((r) => r.includes('validated edge-01 at 10.99.0.29')),
    'validation output',
  );
});
