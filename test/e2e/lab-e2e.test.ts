// Issue 7: the virtual lab end to end. `vaquero lab up` (own namespaces and ports) brings up QEMU
// machines behind ipmi_sim BMCs and `vaquero standalone`; a commit to the lab's SoT (a new kernel
// command line) rolls out canary first, two at a time: every machine power-cycles once at its BMC,
// network-boots the new config (its /status.json echoes the new marker) and is validated. Then a
// commit whose validation cannot pass halts the rollout at the canary, the others untouched. During
// the first rollout the agent process is killed (SIGKILL) once the canary has booted, and started
// again by a second `vaquero lab up`: the rollout completes and no machine is power-cycled twice.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { powerCommands } from '../../cli/lab/machines';
import { labCommand } from '../../cli/lab/command';
import { LAB_PROMETHEUS_URL } from '../../cli/lab/prometheus';
import { statusQuery } from '../../workflows/messages';
import { freePort, git, io } from '../helpers/lab-test';
import { qemuOrSkip } from '../helpers/qemu';

const run = promisify(execFile);
const MACHINES = ['lab-01', 'lab-02', 'lab-03', 'lab-04', 'lab-05', 'lab-06'];
/** lab-05 and lab-06 are the second rack, behind the relay (examples/lab). */
const address = (name: string) => `10.${Number(name.slice(-1)) > 4 ? 78 : 77}.0.1${name.slice(-1)}`;
const ROLLOUT_TIMEOUT_MS = 12 * 60_000;
/** The lowest value a host's guest reported over 5 minutes: what it said before this boot counts too. */
const GUEST_OK = 'min_over_time(vaquero_lab_guest_ok{host="{{ host.name }}"}[5m])';
const SOAK_GATE = [
  '  canary: { size: 1, soak: 8s }',
  '  gates:',
  `    - { name: guest-ok, prometheus: "${LAB_PROMETHEUS_URL}", query: '${GUEST_OK}', must: "== 1", every: 1s }`,
].join('\n');

/** Edits a file of the lab's SoT and commits it; returns the commit's short SHA (the rollout's id). */
async function commit(sot: string, file: string, edit: (text: string) => string, message: string) {
  const full = path.join(sot, file);
  await writeFile(full, edit(await readFile(full, 'utf8')));
  await git(sot, ['commit', '-q', '-am', message]);
  return (await git(sot, ['rev-parse', 'HEAD'])).slice(0, 7);
}

/** Polls until the workflow is closed (or halted), or until its search attribute phase says halted. */
async function waitRollout(client: Client, id: string, until: 'completed' | 'halted'): Promise<string> {
  const deadline = Date.now() + ROLLOUT_TIMEOUT_MS;
  for (;;) {
    const phase = await client.workflow
      .getHandle(id)
      .describe()
      .then((d) =>
        d.status.name === 'RUNNING' ? String(d.searchAttributes.VaqueroPhase?.[0] ?? '') : d.status.name,
      )
      .catch(() => 'not-started');
    // A closed workflow's status (COMPLETED, FAILED, ...) or a halt; running and soaking go on.
    if (until === 'completed' && (/^[A-Z_]+$/.test(phase) || /halt/.test(phase))) return phase;
    if (until === 'halted' && /halt/.test(phase)) return phase;
    if (Date.now() > deadline) throw new Error(`${id}: still ${phase} after ${ROLLOUT_TIMEOUT_MS / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

/** Boot-event kinds signalled to a host's workflow, in order. */
async function bootEvents(client: Client, id: string): Promise<string[]> {
  const history = await client.workflow.getHandle(id).fetchHistory();
  const kinds: string[] = [];
  for (const event of history.events ?? []) {
    const signal = event.workflowExecutionSignaledEventAttributes;
    const payload = signal?.input?.payloads?.[0]?.data;
    if (!payload) continue;
    const data: unknown = JSON.parse(Buffer.from(payload).toString());
    // One event per signal (older workflows), or a batch of them (`boot-events`).
    if (signal?.signalName === 'boot-event') kinds.push((data as { kind: string }).kind);
    if (signal?.signalName === 'boot-events')
      kinds.push(...(data as { events: { kind: string }[] }).events.map((e) => e.kind));
  }
  return kinds;
}

/** Waits for the first host of the commit's rollout to reach its checkpoint; returns its name. */
async function firstCheckpoint(client: Client, commit: string): Promise<string> {
  const deadline = Date.now() + ROLLOUT_TIMEOUT_MS;
  for (;;) {
    for (const name of MACHINES) {
      const kinds = await bootEvents(client, `host/lab/${name}/${commit}`).catch((): string[] => []);
      if (kinds.includes('checkpoint')) return name;
    }
    if (Date.now() > deadline) throw new Error(`no host of ${commit} reached its checkpoint`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

test('lab: a SoT change rolls out canary first, two at a time, through an agent kill; a failing canary halts the rest', async (t) => {
  if (!(await qemuOrSkip(t))) return;
  const state = await mkdtemp(path.join(tmpdir(), 'vql-e2e-'));
  const prefix = `vql${randomBytes(2).toString('hex')}`;
  const temporalPort = await freePort();
  const args = ['--state', state, '--prefix', prefix, '--ui-port', String(await freePort())];
  args.push('--temporal-port', String(temporalPort));
  const output: string[] = [];
  t.after(async () => {
    await labCommand(['down', ...args, '--purge'], io([]));
  });
  await labCommand(['up', ...args], io(output));
  const connection = await Connection.connect({ address: `127.0.0.1:${temporalPort}` });
  t.after(() => connection.close());
  const client = new Client({ connection, namespace: 'default' });
  const sot = path.join(state, 'sot');
  const vm = (name: string) => path.join(state, 'vms', name);

  // The first commit reprovisions every machine; it is the starting point, not what is measured.
  const first = (await git(sot, ['rev-parse', 'HEAD'])).slice(0, 7);
  assert.equal(await waitRollout(client, `rollout/lab/${first}`, 'completed'), 'COMPLETED');
  const before = new Map<string, string[]>();
  for (const name of MACHINES) before.set(name, await powerCommands(vm(name)));

  const started = performance.now();
  // The canary soaks, and the guests' gauge gates it and each later wave (vaquero.ok= from the host).
  const group = path.join(sot, 'workflows/lab.yaml');
  await writeFile(group, (await readFile(group, 'utf8')).replace('  canary: 1', SOAK_GATE));
  const second = await commit(
    sot,
    'os/lab-linux.yaml',
    (s) =>
      s.replace(
        'vaquero.marker=v1',
        'vaquero.marker=v2 vaquero.ok={{ host.metadata.guest_ok | default(1) }}',
      ),
    'v2',
  );
  // The canary has booted and is being validated by the agent: kill the agent, then `lab up` again.
  const canary = await firstCheckpoint(client, second);
  const agentPid = Number((await readFile(path.join(state, 'run/agent.pid'), 'utf8')).trim());
  process.kill(agentPid, 'SIGKILL');
  t.diagnostic(`${canary} at its checkpoint: agent (pid ${agentPid}) killed`);
  await new Promise((resolve) => setTimeout(resolve, 2000));
  await labCommand(['up', ...args], io(output));
  const restarted = Number((await readFile(path.join(state, 'run/agent.pid'), 'utf8')).trim());
  assert.notEqual(restarted, agentPid, 'lab up started a new agent');
  assert.equal(await waitRollout(client, `rollout/lab/${second}`, 'completed'), 'COMPLETED');
  t.diagnostic(
    `SoT change -> rollout of ${MACHINES.length} machines completed in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  // The soak's checks (every 1 s for 8 s), then one after each of the three later waves.
  const checks = (await client.workflow.getHandle(`rollout/lab/${second}`).fetchHistory()).events?.filter(
    (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'checkGate',
  ).length;
  assert.ok((checks ?? 0) >= 3 + 3, `the gate was checked during the soak and after each wave: ${checks}`);

  for (const name of MACHINES) {
    const { stdout } = await run('ip', [
      'netns',
      'exec',
      `${prefix}-agent`,
      'curl',
      '-sf',
      `http://${address(name)}/status.json`,
    ]);
    assert.equal(
      (JSON.parse(stdout) as { marker: string }).marker,
      'v2',
      `${name} booted the new command line`,
    );
    const commands = (await powerCommands(vm(name))).slice(before.get(name)?.length ?? 0);
    assert.equal(
      commands.filter((c) => c === 'power 1').length,
      1,
      `${name} powered on once: ${commands.join(', ')}`,
    );
    const kinds = await bootEvents(client, `host/lab/${name}/${second}`);
    for (const kind of ['dhcp', 'ipxe', 'kernel', 'initrd', 'checkpoint'])
      assert.ok(kinds.includes(kind), `${name}: no ${kind} boot event in its history (${kinds.join(' ')})`);
  }

  // lab-03's guest reports 0: only it reboots, as the canary, and its gate halts the rollout.
  for (const name of MACHINES) before.set(name, await powerCommands(vm(name)));
  const gated = Date.now();
  const bad = await commit(
    sot,
    'sites/lab/hosts/machines.yaml',
    (s) => s.replace('  rack: vr1\n---\nname: lab-04', '  rack: vr1\n  guest_ok: 0\n---\nname: lab-04'),
    'lab-03 reports 0',
  );
  await waitRollout(client, `rollout/lab/${bad}`, 'halted');
  const halted = await client.workflow.getHandle(`rollout/lab/${bad}`).query(statusQuery);
  assert.match(
    halted.waitingFor ?? '',
    /^gate "guest-ok" failed at \S+Z on lab-03: min_over_time\(vaquero_lab_guest_ok\{host="lab-03"\}\[5m\]\) = 0 \{.*host="lab-03".*\}, must be == 1 \(the canary's soak\)/,
  );
  t.diagnostic(
    `gate halt ${((Date.now() - gated) / 1000).toFixed(1)} s after the commit: ${halted.waitingFor}`,
  );
  for (const name of MACHINES) {
    const commands = (await powerCommands(vm(name))).slice(before.get(name)?.length ?? 0);
    assert.equal(commands.length > 0, name === 'lab-03', `${name}: ${commands.join(', ')}`);
  }

  // A validation that cannot pass: the canary fails and the rollout halts before the others.
  for (const name of MACHINES) before.set(name, await powerCommands(vm(name)));
  // Only a change of what a host boots reprovisions it: the new check comes with a new marker.
  const profile = path.join(sot, 'boot/lab-live.yaml');
  const check = (await readFile(profile, 'utf8')).replace(
    'path: booted, equals: true',
    'path: marker, equals: "never"',
  );
  await writeFile(profile, check.replace('retries: 5', 'retries: 0'));
  const third = await commit(
    sot,
    'os/lab-linux.yaml',
    (s) => s.replace('vaquero.marker=v2', 'vaquero.marker=v3'),
    'v3',
  );
  await waitRollout(client, `rollout/lab/${third}`, 'halted');
  const touched: string[] = [];
  for (const name of MACHINES)
    if ((await powerCommands(vm(name))).length > (before.get(name)?.length ?? 0)) touched.push(name);
  assert.equal(touched.length, 1, `only the canary was power-cycled: ${touched.join(', ')}`);
});
