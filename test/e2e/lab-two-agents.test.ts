// Issue 13, "Done when" (first bullet): the lab with two agents on its broadcast domain and a second
// rack behind ISC dhcrelay. The first rollout provisions all six machines through that topology (the
// rack's BIOS and UEFI machines lease through the relay). Then a commit rolls out over both racks and
// agent A is killed with SIGKILL while a host is between its power cycle and its checkpoint, and not
// restarted: the rollout completes through agent B. Then agent A comes back, and agent B is killed in
// the middle of the next commit's rollout. Each time: every machine powered on once at its emulated
// BMC (chassis-control's power.log), no armed host handed the local-disk script, and each host's
// workflow history holds its boot steps. Last, with both agents up, the agent that handed a host its
// iPXE script is killed right after (boot-URL failover): the host takes its kernel, initrd and
// checkpoint from the other agent, and its workflow completes on what that agent saw. Then, in the
// same lab (one lab boot in CI for all), issue 7's scenarios (test/helpers/lab-gates.ts: a canary soak
// gated by the guests' gauge, two at a time, through a restart of both agents; a gate halt; a
// validation halt), issue 14's DHCP-drop boot retries (test/helpers/lab-boot-retries.ts) and its image
// deployment to lab-03's disk (test/helpers/lab-image.ts).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { labCommand } from '../../cli/lab/command';
import { powerCommands } from '../../cli/lab/machines';
import { dhcpDropRetries } from '../helpers/lab-boot-retries';
import { labGateHalt, labSoakGateAgentRestart, labValidationHalt } from '../helpers/lab-gates';
import { labImageDeploy } from '../helpers/lab-image';
import { bootSteps, freePort, git, io, labPostMortem } from '../helpers/lab-test';
import { qemuOrSkip } from '../helpers/qemu';

const run = promisify(execFile);
const MACHINES = {
  'lab-01': '10.77.0.11',
  'lab-02': '10.77.0.12',
  'lab-03': '10.77.0.13',
  'lab-04': '10.77.0.14',
  'lab-05': '10.78.0.15',
  'lab-06': '10.78.0.16',
} as const;
type Machine = keyof typeof MACHINES;
const NAMES = Object.keys(MACHINES) as Machine[];
const ROLLOUT_TIMEOUT_MS = 8 * 60_000;
const STEPS = ['dhcp', 'ipxe', 'kernel', 'initrd', 'checkpoint'];

/**
 * The lab's SoT as `lab up` would copy it from examples/lab, but after the canary the other five
 * machines go at once (examples/lab: two at a time). Each kill below happens while the canary is
 * the only host in flight; what follows needs no waves, and two waves instead of four take each of
 * this test's rollouts about half a minute less on two cores.
 */
async function prepareSot(state: string): Promise<void> {
  const sot = path.join(state, 'sot');
  await cp(fileURLToPath(new URL('../../examples/lab', import.meta.url)), sot, { recursive: true });
  const group = path.join(sot, 'workflows/lab.yaml');
  const text = await readFile(group, 'utf8');
  assert.match(text, /^ {2}max_concurrent: 2$/m);
  await writeFile(group, text.replace(/^ {2}max_concurrent: 2$/m, '  max_concurrent: 5'));
  await git(sot, ['init', '-q', '-b', 'main']);
  await git(sot, ['add', '-A']);
  await git(sot, ['commit', '-q', '-m', 'lab: initial SoT, five at a time after the canary']);
}

/** Polls until the rollout's workflow has closed; returns its status. */
async function rolloutClosed(client: Client, id: string): Promise<string> {
  const deadline = Date.now() + ROLLOUT_TIMEOUT_MS;
  for (;;) {
    const status = await client.workflow
      .getHandle(id)
      .describe()
      .then((d) => d.status.name)
      .catch(() => 'NOT_STARTED');
    if (status !== 'RUNNING' && status !== 'NOT_STARTED') return status;
    if (Date.now() > deadline) throw new Error(`${id}: still ${status} after ${ROLLOUT_TIMEOUT_MS / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

interface Lab {
  state: string;
  prefix: string;
  args: string[];
  client: Client;
  sot: string;
}

const vm = (lab: Lab, name: string) => path.join(lab.state, 'vms', name);
const pidOf = async (lab: Lab, daemon: string) =>
  Number((await readFile(path.join(lab.state, 'run', `${daemon}.pid`), 'utf8')).trim());
const AGENT_LOGS = ['agent', 'agent-b'];

/** What each machine's BMC and each agent's log hold now: what the next rollout is measured from. */
async function mark(lab: Lab) {
  const power = new Map<string, number>();
  for (const name of NAMES) power.set(name, (await powerCommands(vm(lab, name))).length);
  const logs = new Map<string, number>();
  for (const log of AGENT_LOGS)
    logs.set(log, (await stat(path.join(lab.state, 'run', `${log}.log`)).catch(() => undefined))?.size ?? 0);
  return { power, logs };
}

/**
 * Kills `daemon` with SIGKILL as soon as a machine's BMC has powered it on for this rollout: the
 * canary, the only host in flight, is between its power cycle and its checkpoint, and the agent may
 * be the one whose power-cycle activity has not reported back yet. This early, the firmware has not
 * asked DHCP yet, so the host boots from the surviving agent.
 */
async function killAtPowerOn(
  t: TestContext,
  lab: Lab,
  before: Awaited<ReturnType<typeof mark>>,
  daemon: string,
): Promise<string> {
  const deadline = Date.now() + ROLLOUT_TIMEOUT_MS;
  for (;;) {
    for (const name of NAMES) {
      const commands = (await powerCommands(vm(lab, name))).slice(before.power.get(name) ?? 0);
      if (!commands.includes('power 1')) continue;
      const pid = await pidOf(lab, daemon);
      process.kill(pid, 'SIGKILL');
      t.diagnostic(`${name} powered on by its BMC: ${daemon} (pid ${pid}) killed`);
      return name;
    }
    if (Date.now() > deadline) throw new Error(`no machine was powered on`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Kills, with SIGKILL, the agent that answers a machine's iPXE script request (its log's
 * `GET /ipxe/<mac> 200`, written as the response goes out) as soon as it has: the machine is
 * fetching its kernel from it. Returns the machine and the agent's log name.
 */
async function killAfterScript(
  t: TestContext,
  lab: Lab,
  before: Awaited<ReturnType<typeof mark>>,
): Promise<{ machine: Machine; killed: string }> {
  const deadline = Date.now() + ROLLOUT_TIMEOUT_MS;
  for (;;) {
    for (const log of AGENT_LOGS) {
      const text = (await readFile(path.join(lab.state, 'run', `${log}.log`)).catch(() => Buffer.alloc(0)))
        .subarray(before.logs.get(log) ?? 0)
        .toString();
      const served = /GET \/ipxe\/52-54-00-(77|78)-00-1(\d) 200/.exec(text);
      if (!served) continue;
      const pid = await pidOf(lab, log);
      process.kill(pid, 'SIGKILL');
      const machine = `lab-0${served[2]}` as Machine;
      t.diagnostic(`${machine} took its iPXE script from ${log}: killed (pid ${pid})`);
      return { machine, killed: log };
    }
    if (Date.now() > deadline) throw new Error('no machine fetched its iPXE script');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Every machine powered on once since `before`, never handed the local-disk script, its steps in history. */
async function assertRolledOut(
  lab: Lab,
  commit: string,
  before: Awaited<ReturnType<typeof mark>>,
  marker: string,
  /** A machine whose agent died after its script: its steps before the survivor's may be gone with it. */
  stranded?: Machine,
) {
  let logs = '';
  for (const log of AGENT_LOGS)
    logs += (await readFile(path.join(lab.state, 'run', `${log}.log`)).catch(() => Buffer.alloc(0)))
      .subarray(before.logs.get(log) ?? 0)
      .toString();
  for (const name of NAMES) {
    const commands = (await powerCommands(vm(lab, name))).slice(before.power.get(name) ?? 0);
    const ons = commands.filter((c) => c === 'power 1').length;
    assert.equal(ons, 1, `${name} powered on once at its BMC: ${commands.join(', ')}`);
    const mac = `52-54-00-77-00-1${name.slice(-1)}`;
    const disk = logs.split('\n').filter((l) => l.includes('unarmed host: local boot') && l.includes(mac));
    assert.deepEqual(disk, [], `${name} was handed the local-disk script while armed`);
    const steps = await bootSteps(lab.client, `host/lab/${name}/${commit}`);
    for (const step of name === stranded ? ['checkpoint'] : STEPS)
      assert.ok(steps.includes(step), `${name}: no ${step} in its history (${steps.join(' ')})`);
    const { stdout } = await run('ip', [
      'netns',
      'exec',
      `${lab.prefix}-agent`,
      'curl',
      '-sf',
      `http://${MACHINES[name]}/status.json`,
    ]);
    assert.equal((JSON.parse(stdout) as { marker: string }).marker, marker, `${name} booted ${marker}`);
  }
}

async function commitMarker(lab: Lab, from: string, to: string): Promise<string> {
  const file = path.join(lab.sot, 'os/lab-linux.yaml');
  await writeFile(
    file,
    (await readFile(file, 'utf8')).replace(`vaquero.marker=${from}`, `vaquero.marker=${to}`),
  );
  await git(lab.sot, ['commit', '-q', '-am', to]);
  return (await git(lab.sot, ['rev-parse', 'HEAD'])).slice(0, 7);
}

test(
  "lab: two agents and a relayed rack; kill -9 of either agent mid-boot, the other completes the rollout; a soaked, gated rollout through both agents' restart; gate and validation halts; a dropped DHCP is retried",
  { timeout: 25 * 60_000 },
  async (t) => {
    if (!(await qemuOrSkip(t))) return;
    const state = await mkdtemp(path.join(tmpdir(), 'vql-2a-'));
    await prepareSot(state);
    const prefix = `vql${randomBytes(2).toString('hex')}`;
    const temporalPort = await freePort();
    const args = ['--state', state, '--prefix', prefix, '--ui-port', String(await freePort())];
    args.push('--temporal-port', String(temporalPort));
    const output: string[] = [];
    let passed = false;
    const found: { client?: Client } = {};
    t.after(async () => {
      if (!passed) process.stderr.write(`${await labPostMortem(state, prefix, NAMES, found.client)}\n`);
      await labCommand(['down', ...args, '--purge'], io([]));
    });
    await labCommand(['up', ...args], io(output));
    const connection = await Connection.connect({ address: `127.0.0.1:${temporalPort}` });
    t.after(() => connection.close());
    const lab: Lab = {
      state,
      prefix,
      args,
      client: new Client({ connection, namespace: 'default' }),
      sot: path.join(state, 'sot'),
    };
    found.client = lab.client;

    // The first commit provisions all six machines through both agents and the relay; it starts while
    // `lab up` still starts agent B, so it is measured from nothing.
    let before = { power: new Map<string, number>(), logs: new Map<string, number>() };
    const first = (await git(lab.sot, ['rev-parse', 'HEAD'])).slice(0, 7);
    let started = performance.now();
    assert.equal(await rolloutClosed(lab.client, `rollout/lab/${first}`), 'COMPLETED');
    t.diagnostic(
      `first rollout, 6 machines over 2 racks: ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
    await assertRolledOut(lab, first, before, 'v1');
    for (const name of ['lab-05', 'lab-06']) {
      const serial = await readFile(path.join(vm(lab, name), 'serial.log'), 'utf8');
      assert.match(
        serial,
        new RegExp(`lease of ${MACHINES[name as Machine].replaceAll('.', '\\.')} obtained`),
        `${name} leased through the relay`,
      );
    }
    const status: string[] = [];
    await labCommand(['status', ...args], io(status));
    t.diagnostic(status.join(''));
    assert.match(status.join(''), /lab-agent \(.*\): running .*served lab-/);
    assert.match(status.join(''), /lab-agent-b \(.*\): running .*served /);

    // Agent A dies mid-boot and stays down: agent B finishes the rollout alone.
    for (const [from, to, victim] of [
      ['v1', 'v2', 'agent'],
      ['v2', 'v3', 'agent-b'],
    ] as const) {
      if (victim === 'agent-b') await labCommand(['up', ...args], io(output));
      before = await mark(lab);
      started = performance.now();
      const commit = await commitMarker(lab, from, to);
      await killAtPowerOn(t, lab, before, victim);
      assert.equal(await rolloutClosed(lab.client, `rollout/lab/${commit}`), 'COMPLETED');
      t.diagnostic(
        `${to}: rollout with ${victim} killed completed in ${((performance.now() - started) / 1000).toFixed(1)} s`,
      );
      await assertRolledOut(lab, commit, before, to);
    }

    // Both agents up; the one that hands the canary its iPXE script dies right after: the script's
    // `kernel A || kernel B` (same for the initrd) and the guest's checkpoint list go on at the other.
    await labCommand(['up', ...args], io(output));
    before = await mark(lab);
    started = performance.now();
    const commit = await commitMarker(lab, 'v3', 'v4');
    const { machine, killed } = await killAfterScript(t, lab, before);
    assert.equal(await rolloutClosed(lab.client, `rollout/lab/${commit}`), 'COMPLETED');
    t.diagnostic(
      `v4: rollout with ${killed} killed after ${machine}'s script: ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
    await assertRolledOut(lab, commit, before, 'v4', machine);
    const survivor = killed === 'agent' ? '10.77.0.250' : '10.77.0.1';
    const serial = await readFile(path.join(vm(lab, machine), 'serial.log'), 'utf8');
    assert.match(
      serial.slice(serial.lastIndexOf('vaquero-lab: interface')),
      new RegExp(`vaquero-lab: checkpoint http://${survivor.replaceAll('.', '\\.')}:8080/\\S+ ok`),
      `${machine} called its checkpoint at the surviving agent`,
    );
    const steps = await bootSteps(lab.client, `host/lab/${machine}/${commit}`);
    t.diagnostic(`${machine}'s boot steps in its history: ${steps.join(' ')}`);

    // Issue 7's scenarios in this lab (CI boots it once): a soaked, gated rollout through both agents'
    // restart, then a gate halt and a validation halt, each aborted and its rules put back.
    await labCommand(['up', ...args], io(output));
    await labSoakGateAgentRestart(t, lab);
    await labGateHalt(t, lab);
    await labValidationHalt(t, lab);

    // Both agents up again; every machine runs the lab OS: a machine whose DHCP is dropped is retried.
    await labCommand(['up', ...args], io(output));
    started = performance.now();
    await dhcpDropRetries(t, lab);
    t.diagnostic(`DHCP-drop boot retries: ${((performance.now() - started) / 1000).toFixed(1)} s`);
    // Then lab-03 gets the lab OS image on its disk, boots from it, and a corrupted image fails.
    started = performance.now();
    await labImageDeploy(t, lab);
    t.diagnostic(`image deployment: ${((performance.now() - started) / 1000).toFixed(1)} s`);
    passed = true;
  },
);
