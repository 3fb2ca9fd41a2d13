// Issue 14 item 3 in the virtual lab, run inside another lab e2e test's lab (test/e2e/lab-two-agents)
// so CI boots the lab once for both: a machine whose first DHCP exchange is lost (an ebtables rule on
// the lab bridge drops its DHCP requests until the workflow starts its second boot attempt) is
// power-cycled again over IPMI and completes; with `boot_retries: 0` the same machine fails at
// `dhcp`, the step named. Real QEMU/iPXE, ipmi_sim, both agents and standalone's Temporal; the host
// workflow is started on the lab's own server worker with a short DHCP timeout (the lab's rollouts
// use the default five minutes). Needs every machine provisioned (the lab OS running) and both agents up.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { powerCommands } from '../../cli/lab/machines';
import { SERVER_TASK_QUEUE, type ReprovisionHostResult } from '../../schemas/rollout';
import { hostStatusQuery } from '../../workflows/messages';
import { git, labUntil } from './lab-test';

const run = promisify(execFile);
const HOST = 'lab-02';
const MAC = '52:54:00:77:00:12';
const DEADLINE_MS = 15 * 60_000;
// SeaBIOS and iPXE send their first DISCOVER a few seconds after the power-on under TCG; 30 s leaves
// a wide margin on a busy machine (passed at load 10-17) and proves the same as a longer wait: the
// dropped attempt is the one that times out.
const DHCP_TIMEOUT_MS = 30_000;
const timeouts = { dhcp: DHCP_TIMEOUT_MS, ipxe: 120_000, kernel: 300_000, checkpoint: 600_000 };

export interface RunningLab {
  state: string;
  prefix: string;
  client: Client;
  sot: string;
}

const until = <T>(what: string, probe: () => Promise<T | undefined>): Promise<T> =>
  labUntil(what, DEADLINE_MS, probe);

/** Sets the lab group's boot_retries, commits, and waits until the commit is applied (its revision stored). */
async function setRetries(client: Client, sot: string, retries: number): Promise<string> {
  const file = path.join(sot, 'workflows/lab.yaml');
  const text = (await readFile(file, 'utf8')).replace(/^boot_retries: \d+\n/m, '');
  await writeFile(file, text.replace(/^boots: (.*)$/m, `boots: $1\nboot_retries: ${retries}`));
  await git(sot, ['commit', '-q', '-am', `boot_retries ${retries}`]);
  const sha = await git(sot, ['rev-parse', 'HEAD']);
  await until(`apply/${sha}`, async () => {
    const d = await client.workflow.getHandle(`apply/${sha}`).describe();
    return d.status.name === 'COMPLETED' ? true : undefined;
  });
  return sha;
}

export async function dhcpDropRetries(t: TestContext, lab: RunningLab): Promise<void> {
  const { client, sot, prefix } = lab;
  const powerOns = async () =>
    (await powerCommands(path.join(lab.state, 'vms', HOST))).filter((c) => c === 'power 1').length;
  // Every DHCP packet of the host dropped on the lab bridge, before both agents see it.
  const ebtables = (op: '-A' | '-D') =>
    run('ip', [
      ...['netns', 'exec', `${prefix}-lab`, 'ebtables', op, 'FORWARD', '-s', MAC, '-p', 'IPv4'],
      ...['--ip-proto', 'udp', '--ip-dport', '67', '-j', 'DROP'],
    ]);
  const start = (commit: string, suffix: string) =>
    client.workflow.start('reprovisionHostWorkflowV2', {
      taskQueue: SERVER_TASK_QUEUE,
      workflowId: `host/lab/${HOST}/${commit.slice(0, 7)}/${suffix}`,
      args: [{ site: 'lab', host: HOST, commit, timeouts }],
    });

  // boot_retries 1: the first attempt's DHCP is lost; the rule goes once the retry has begun.
  const retrying = await setRetries(client, sot, 1);
  await ebtables('-A');
  let dropped = true;
  try {
    const onsBefore = await powerOns();
    const handle = await start(retrying, 'dhcp-drop');
    await until('the second boot attempt', async () =>
      (await handle.query(hostStatusQuery)).bootRetries?.length ? true : undefined,
    );
    await ebtables('-D');
    dropped = false;
    const result = (await handle.result()) as ReprovisionHostResult;
    assert.equal(result.ok, true, result.error);
    assert.deepEqual(
      result.bootRetries?.map((r) => `${r.attempt}:${r.missed}`),
      ['1:dhcp'],
    );
    assert.equal((await powerOns()) - onsBefore, 2, 'one power-on at the BMC per attempt');
    t.diagnostic(
      `${HOST}: DHCP dropped on attempt 1, completed on attempt 2 (DHCP timeout ${DHCP_TIMEOUT_MS / 1000} s)`,
    );

    // boot_retries 0: the same drop fails the host at dhcp, after one power cycle.
    const strict = await setRetries(client, sot, 0);
    await ebtables('-A');
    dropped = true;
    const onsStrict = await powerOns();
    const failing = await start(strict, 'dhcp-drop');
    const err = await failing.result().then(
      () => assert.fail(`${HOST} completed with its DHCP dropped`),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError);
    assert.match(
      String(err.cause?.message),
      new RegExp(
        `^lab-02: stage 1 dhcp: no dhcp event from 52:54:00:77:00:12 within ${DHCP_TIMEOUT_MS / 1000} s$`,
      ),
    );
    assert.equal((await powerOns()) - onsStrict, 1);
  } finally {
    if (dropped) await ebtables('-D').catch(() => undefined);
  }
}
