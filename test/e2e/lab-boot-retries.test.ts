// Issue 14 item 3 in the virtual lab: a machine whose first DHCP exchange is lost (an ebtables rule
// on the lab bridge drops its DHCP requests until the workflow starts its second boot attempt) is
// power-cycled again over IPMI and completes; with `boot_retries: 0` the same machine fails at
// `dhcp`, the step named. Real QEMU/iPXE, ipmi_sim, both agents and standalone's Temporal; the host
// workflow is started on the lab's own server worker with a short DHCP timeout (the lab's rollouts
// use the default five minutes).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { labCommand } from '../../cli/lab/command';
import { powerCommands } from '../../cli/lab/machines';
import { SERVER_TASK_QUEUE, type ReprovisionHostResult } from '../../schemas/rollout';
import { hostStatusQuery } from '../../workflows/messages';
import { freePort, git, io } from '../helpers/lab-test';
import { qemuOrSkip } from '../helpers/qemu';

const run = promisify(execFile);
const HOST = 'lab-02';
const MAC = '52:54:00:77:00:12';
const DEADLINE_MS = 15 * 60_000;
// Long enough for SeaBIOS and iPXE under TCG on a busy machine; short enough for a test.
const timeouts = { dhcp: 90_000, ipxe: 120_000, kernel: 300_000, checkpoint: 600_000 };

async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + DEADLINE_MS;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${DEADLINE_MS / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

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

test('lab: a machine whose first DHCP is dropped is cycled again and completes; with boot_retries 0 it fails at dhcp', async (t) => {
  if (!(await qemuOrSkip(t))) return;
  const state = await mkdtemp(path.join(tmpdir(), 'vql-retry-'));
  const prefix = `vqr${randomBytes(2).toString('hex')}`;
  const temporalPort = await freePort();
  const args = ['--state', state, '--prefix', prefix, '--ui-port', String(await freePort())];
  args.push('--temporal-port', String(temporalPort));
  t.after(async () => {
    await labCommand(['down', ...args, '--purge'], io([]));
  });
  await labCommand(['up', ...args], io([]));
  const connection = await Connection.connect({ address: `127.0.0.1:${temporalPort}` });
  t.after(() => connection.close());
  const client = new Client({ connection, namespace: 'default' });
  const sot = path.join(state, 'sot');
  const powerOns = async () =>
    (await powerCommands(path.join(state, 'vms', HOST))).filter((c) => c === 'power 1').length;

  // The first commit provisions every machine; the host runs the lab OS from then on.
  const first = await git(sot, ['rev-parse', 'HEAD']);
  await until('the first rollout', async () => {
    const d = await client.workflow.getHandle(`rollout/lab/${first.slice(0, 7)}`).describe();
    return d.status.name === 'RUNNING' ? undefined : d.status.name;
  });

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
  t.after(async () => {
    if (dropped) await ebtables('-D').catch(() => undefined);
  });
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
  t.diagnostic(`${HOST}: DHCP dropped on attempt 1, completed on attempt 2`);

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
    /^lab-02: stage 1 dhcp: no dhcp event from 52:54:00:77:00:12 within 90 s$/,
  );
  assert.equal((await powerOns()) - onsStrict, 1);
});
