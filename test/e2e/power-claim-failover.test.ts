// Exactly one power cycle per attempt across agents (issue 13, item 2): agent A is killed with
// SIGKILL after the claim is recorded and the BMC has acted, before the BMC answered; the activity's
// retry runs on agent B, which has never seen the claim on its own disk. The host's boot traffic
// reaches B, and the BMC (an operator's command script that counts) is cycled once.
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '@temporalio/client';
import { applyWorkflowId, hostWorkflowId } from '../../schemas/rollout';
import type { ApplyCommitResult } from '../../workflows/apply-commit';
import { startSiteRig, writeSimSot } from '../helpers/agent-process';
import { connectOrSkip } from '../helpers/temporal';

const MAC = '52:54:00:99:00:0b';

/** A BMC that records each cycle at once and answers 6 s later: the window the agent dies in. */
const BMC_SCRIPT = `#!/bin/sh
case "$2" in
  status) echo on ;;
  cycle|on) echo "$2" >> "$1/cycles"; sleep 6 ;;
  *) ;;
esac
`;

async function lines(file: string): Promise<string[]> {
  return (await readFile(file, 'utf8').catch(() => '')).split('\n').filter(Boolean);
}

test(
  'kill -9 of agent A between the claim and the BMC’s answer, retried on agent B: one cycle at the BMC',
  { timeout: 180_000 },
  async (t) => {
    const connection = await connectOrSkip(t);
    if (!connection) return;
    const dir = await mkdtemp(path.join(tmpdir(), 'vaquero-claim-'));
    const bmcDir = path.join(dir, 'bmc');
    const script = path.join(dir, 'bmc.sh');
    await writeFile(script, BMC_SCRIPT);
    await chmod(script, 0o755);
    const rig = await startSiteRig(dir, ['agent-a', 'agent-b'], async (repo, agents) => {
      await writeSimSot(repo, agents);
      const hosts = path.join(repo, 'sites/sim1/hosts');
      for (const f of ['workers.yaml', 'edge.yaml']) await unlink(path.join(hosts, f));
      const bmc = `{ type: command, command: ${script}, args: ['${bmcDir}'], timeout: 30s }`;
      const host = `name: cp-01\ngroup: control\ninterfaces:\n  - mac: "${MAC}"\n    subnet: sim1-prov\n    ipv4: 10.99.0.11\nbmc: ${bmc}\n`;
      await writeFile(path.join(hosts, 'control.yaml'), host);
      const group = 'id: control\nboots: [sim-node]\nrollout: { max_concurrent: 1, max_fail: 0 }\n';
      await writeFile(path.join(repo, 'workflows/control.yaml'), group);
    });
    await mkdir(bmcDir, { recursive: true });
    t.after(async () => {
      for (const agent of rig.agentsOf()) await agent.kill();
      await rig.server.stop();
      await rm(dir, { recursive: true, force: true });
    });
    const client = new Client({ connection, namespace: rig.namespace });
    const a = await rig.startAgent('agent-a');

    const sha = await rig.apply('one host behind a slow BMC');
    const { rollouts } = (await client.workflow
      .getHandle(applyWorkflowId(sha))
      .result()) as ApplyCommitResult;
    t.after(() =>
      client.workflow
        .getHandle(rollouts[0]?.workflowId ?? '')
        .terminate('test finished')
        .catch(() => undefined),
    );
    // The BMC has acted and has not answered yet: agent A dies now.
    for (let i = 0; (await lines(path.join(bmcDir, 'cycles'))).length === 0; i++) {
      assert.ok(i < 1200, 'the power cycle never reached the BMC');
      await sleep(50);
    }
    await a.kill();
    const b = await rig.startAgent('agent-b', { inDoubtGraceMs: 30_000 });

    // The host boots: its iPXE request reaches agent B, which serves it from the site's arms.
    for (let i = 0; ; i++) {
      const res = await fetch(`http://127.0.0.1:${b.httpPort}/ipxe/${MAC.replaceAll(':', '-')}`);
      if (!/not armed/.test(await res.text())) break;
      assert.ok(i < 100, 'agent B never saw the host armed');
      await sleep(100);
    }

    // The activity's retry (after the 10 s heartbeat timeout) runs on B and settles the claim.
    const host = client.workflow.getHandle(hostWorkflowId('sim1', 'cp-01', sha));
    let completed: Record<string, unknown> | undefined;
    for (let i = 0; !completed; i++) {
      assert.ok(i < 600, 'the retried power cycle never completed');
      const history = await host.fetchHistory();
      const scheduled = history.events?.find(
        (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'armAndPowerCycle',
      );
      const event = history.events?.find(
        (e) =>
          scheduled?.eventId &&
          String(e.activityTaskCompletedEventAttributes?.scheduledEventId) === String(scheduled.eventId),
      );
      const payload = event?.activityTaskCompletedEventAttributes?.result?.payloads?.[0]?.data;
      if (payload) completed = JSON.parse(Buffer.from(payload).toString('utf8')) as Record<string, unknown>;
      else await sleep(200);
    }
    t.diagnostic(`retried attempt: ${JSON.stringify(completed)}`);
    assert.equal(completed.cycled, false);
    assert.match(String(completed.note), /a crashed attempt cycled it/);
    await sleep(1_000);
    assert.deepEqual(await lines(path.join(bmcDir, 'cycles')), ['cycle'], 'one cycle at the BMC');
    assert.match(b.output(), /"agent started"/);
  },
);
