// Issue 7's lab scenarios (a canary soak with a metric gate on the guests' own gauge, an agent
// restart mid-rollout, a gate halt and a validation halt), run inside test/e2e/lab-two-agents's lab so
// CI boots the lab and rolls out its first commit once for all of them. Each scenario sets up the SoT
// rules it needs and puts the group's rules back after itself (a commit that reprovisions nothing),
// and a halted rollout is aborted before the next scenario: none depends on another's leftovers.
// Needs: every machine provisioned in group `lab` (the lab OS running), both agents up.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import type { Client } from '@temporalio/client';
import { labCommand } from '../../cli/lab/command';
import { powerCommands } from '../../cli/lab/machines';
import { LAB_PROMETHEUS_URL } from '../../cli/lab/prometheus';
import { abortSignal, statusQuery } from '../../workflows/messages';
import { bootSteps, git, io, labUntil } from './lab-test';

const run = promisify(execFile);
const MACHINES = ['lab-01', 'lab-02', 'lab-03', 'lab-04', 'lab-05', 'lab-06'];
/** lab-05 and lab-06 are the second rack, behind the relay (examples/lab). */
const address = (name: string) => `10.${Number(name.slice(-1)) > 4 ? 78 : 77}.0.1${name.slice(-1)}`;
const ROLLOUT_TIMEOUT_MS = 12 * 60_000;
/** The lowest value a host's guest reported over 5 minutes: what it said before this boot counts too. */
const GUEST_OK = 'min_over_time(vaquero_lab_guest_ok{host="{{ host.name }}"}[5m])';
/** Canary 1 with a soak, two at a time, the guests' gauge gating the soak and each later wave. */
const SOAK_GATE = [
  'rollout:',
  '  canary: { size: 1, soak: 8s }',
  '  max_concurrent: 2',
  '  max_fail: 1',
  '  gates:',
  `    - { name: guest-ok, prometheus: "${LAB_PROMETHEUS_URL}", query: '${GUEST_OK}', must: "== 1", every: 1s }`,
  '',
].join('\n');
/**
 * `vaquero.ok=` (the guest's gauge, 1 without it) only for a host whose metadata sets `guest_ok`:
 * adding it changes no other host's command line, so it reprovisions no other host.
 */
const GUEST_OK_ARG =
  '{% if host.metadata.guest_ok is defined %} vaquero.ok={{ host.metadata.guest_ok }}{% endif %}';

export interface GatesLab {
  state: string;
  prefix: string;
  /** `lab up`'s arguments (state, prefix, ports). */
  args: string[];
  client: Client;
  sot: string;
}

const vm = (lab: GatesLab, name: string) => path.join(lab.state, 'vms', name);
const agentPid = async (lab: GatesLab, daemon: string) =>
  Number((await readFile(path.join(lab.state, 'run', `${daemon}.pid`), 'utf8')).trim());

async function powerLog(lab: GatesLab): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const name of MACHINES) counts.set(name, (await powerCommands(vm(lab, name))).length);
  return counts;
}

async function powerSince(lab: GatesLab, name: string, before: Map<string, number>): Promise<string[]> {
  return (await powerCommands(vm(lab, name))).slice(before.get(name) ?? 0);
}

/** Edits files of the SoT, commits, and waits until the commit is applied; returns its short SHA. */
async function commit(
  lab: GatesLab,
  edits: Record<string, (text: string) => string>,
  message: string,
): Promise<string> {
  for (const [file, edit] of Object.entries(edits)) {
    const full = path.join(lab.sot, file);
    await writeFile(full, edit(await readFile(full, 'utf8')));
  }
  await git(lab.sot, ['commit', '-q', '-am', message]);
  const sha = await git(lab.sot, ['rev-parse', 'HEAD']);
  await labUntil(`apply/${sha}`, ROLLOUT_TIMEOUT_MS, async () => {
    const d = await lab.client.workflow.getHandle(`apply/${sha}`).describe();
    return d.status.name === 'RUNNING' ? undefined : d.status.name;
  });
  return sha.slice(0, 7);
}

/** The group's rollout rules replaced by `rules` (the `rollout:` block, at the end of the file). */
const withRules = (rules: string) => (text: string) => {
  const at = text.indexOf('\nrollout:');
  assert.ok(at > 0, 'workflows/lab.yaml has its rollout rules last');
  return text.slice(0, at + 1) + rules;
};

/** Sets the group's rules for a scenario; returns the edit that puts the previous ones back. */
async function groupRules(lab: GatesLab): Promise<(text: string) => string> {
  const text = await readFile(path.join(lab.sot, 'workflows/lab.yaml'), 'utf8');
  return withRules(text.slice(text.indexOf('\nrollout:') + 1));
}

/** Polls until the rollout is closed (or halted) or its phase says halted; returns the phase or status. */
async function waitRollout(client: Client, id: string, until: 'completed' | 'halted'): Promise<string> {
  return labUntil(`${id} ${until}`, ROLLOUT_TIMEOUT_MS, async () => {
    const d = await client.workflow.getHandle(id).describe();
    const phase =
      d.status.name === 'RUNNING' ? String(d.searchAttributes.VaqueroPhase?.[0] ?? '') : d.status.name;
    // A closed workflow's status (COMPLETED, FAILED, ...) or a halt; running and soaking go on.
    if (until === 'completed' && (/^[A-Z_]+$/.test(phase) || /halt/.test(phase))) return phase;
    return /halt/.test(phase) ? phase : undefined;
  });
}

/** Aborts a halted rollout and waits until it is closed: the next commit supersedes nothing. */
async function abortRollout(client: Client, id: string): Promise<void> {
  await client.workflow.getHandle(id).signal(abortSignal, 'the scenario is over');
  await labUntil(`${id} closed`, ROLLOUT_TIMEOUT_MS, async () =>
    (await client.workflow.getHandle(id).describe()).status.name === 'RUNNING' ? undefined : true,
  );
}

/** Waits for the first host of the commit's rollout to reach its checkpoint; returns its name. */
async function firstCheckpoint(client: Client, sha7: string): Promise<string> {
  const deadline = Date.now() + ROLLOUT_TIMEOUT_MS;
  for (;;) {
    for (const name of MACHINES) {
      const kinds = await bootSteps(client, `host/lab/${name}/${sha7}`).catch((): string[] => []);
      if (kinds.includes('checkpoint')) return name;
    }
    if (Date.now() > deadline) throw new Error(`no host of ${sha7} reached its checkpoint`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/**
 * A commit with a new command line rolls out canary first (soaking 8 s), two at a time, gated by the
 * guests' gauge; both agents are killed with SIGKILL once the canary is at its checkpoint and started
 * again by `lab up`: the rollout completes, every machine boots the new marker, each powered on once.
 */
export async function labSoakGateAgentRestart(t: TestContext, lab: GatesLab): Promise<void> {
  const restore = await groupRules(lab);
  const before = await powerLog(lab);
  const started = performance.now();
  const os = await readFile(path.join(lab.sot, 'os/lab-linux.yaml'), 'utf8');
  const marker = /vaquero\.marker=([^\s{]+)/.exec(os)?.[1];
  assert.ok(marker, 'the lab OS command line has a marker');
  const next = `${marker}-soak`;
  const sha7 = await commit(
    lab,
    {
      'workflows/lab.yaml': withRules(SOAK_GATE),
      'os/lab-linux.yaml': (s) => s.replace(`vaquero.marker=${marker}`, `vaquero.marker=${next}`),
    },
    `${next}: a canary soak and the guest-ok gate`,
  );
  const id = `rollout/lab/${sha7}`;
  // The canary has booted and is being validated: no agent left to do it until `lab up`.
  const canary = await firstCheckpoint(lab.client, sha7);
  const killed = [await agentPid(lab, 'agent'), await agentPid(lab, 'agent-b')];
  for (const pid of killed) process.kill(pid, 'SIGKILL');
  t.diagnostic(`${canary} at its checkpoint: both agents (pids ${killed.join(', ')}) killed`);
  await new Promise((resolve) => setTimeout(resolve, 2000));
  await labCommand(['up', ...lab.args], io([]));
  const restarted = [await agentPid(lab, 'agent'), await agentPid(lab, 'agent-b')];
  assert.ok(
    restarted.every((pid) => !killed.includes(pid)),
    `lab up started new agents: ${restarted.join(', ')}`,
  );
  assert.equal(await waitRollout(lab.client, id, 'completed'), 'COMPLETED');
  t.diagnostic(
    `${next}: soaked, gated rollout of ${MACHINES.length} machines through the agents' restart in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  // The soak's checks (every 1 s for 8 s), then one after each of the three later waves.
  const checks = (await lab.client.workflow.getHandle(id).fetchHistory()).events?.filter(
    (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'checkGate',
  ).length;
  assert.ok((checks ?? 0) >= 3 + 3, `the gate was checked during the soak and after each wave: ${checks}`);
  for (const name of MACHINES) {
    const { stdout } = await run('ip', [
      ...['netns', 'exec', `${lab.prefix}-agent`, 'curl', '-sf'],
      `http://${address(name)}/status.json`,
    ]);
    assert.equal(
      (JSON.parse(stdout) as { marker: string }).marker,
      next,
      `${name} booted the new command line`,
    );
    const commands = await powerSince(lab, name, before);
    assert.equal(
      commands.filter((c) => c === 'power 1').length,
      1,
      `${name} powered on once: ${commands.join(', ')}`,
    );
    const kinds = await bootSteps(lab.client, `host/lab/${name}/${sha7}`);
    for (const kind of ['dhcp', 'ipxe', 'kernel', 'initrd', 'checkpoint'])
      assert.ok(kinds.includes(kind), `${name}: no ${kind} boot event in its history (${kinds.join(' ')})`);
  }
  await commit(lab, { 'workflows/lab.yaml': restore }, 'the group rules as before the soak');
}

/**
 * lab-03's guest reports 0: only it reboots, as the canary, and the gate halts the rollout in the
 * canary's soak, naming the query, the value and the host; no other machine is touched.
 */
export async function labGateHalt(t: TestContext, lab: GatesLab): Promise<void> {
  const restore = await groupRules(lab);
  const before = await powerLog(lab);
  const gated = Date.now();
  const sha7 = await commit(
    lab,
    {
      'workflows/lab.yaml': withRules(SOAK_GATE),
      'os/lab-linux.yaml': (s) =>
        s.includes(GUEST_OK_ARG) ? s : s.replace(/(vaquero\.marker=[^\s{]+)/, `$1${GUEST_OK_ARG}`),
      'sites/lab/hosts/machines.yaml': (s) =>
        s.replace('  rack: vr1\n---\nname: lab-04', '  rack: vr1\n  guest_ok: 0\n---\nname: lab-04'),
    },
    'lab-03 reports 0',
  );
  const id = `rollout/lab/${sha7}`;
  await waitRollout(lab.client, id, 'halted');
  const halted = await lab.client.workflow.getHandle(id).query(statusQuery);
  assert.match(
    halted.waitingFor ?? '',
    /^gate "guest-ok" failed at \S+Z on lab-03: min_over_time\(vaquero_lab_guest_ok\{host="lab-03"\}\[5m\]\) = 0 \{.*host="lab-03".*\}, must be == 1 \(the canary's soak\)/,
  );
  t.diagnostic(
    `gate halt ${((Date.now() - gated) / 1000).toFixed(1)} s after the commit: ${halted.waitingFor}`,
  );
  for (const name of MACHINES) {
    const commands = await powerSince(lab, name, before);
    assert.equal(commands.length > 0, name === 'lab-03', `${name}: ${commands.join(', ')}`);
  }
  await abortRollout(lab.client, id);
  await commit(lab, { 'workflows/lab.yaml': restore }, 'the group rules as before the gate');
}

/** A validation that cannot pass: the canary fails and the rollout halts before the others. */
export async function labValidationHalt(t: TestContext, lab: GatesLab): Promise<void> {
  const profile = 'boot/lab-live.yaml';
  const check = await readFile(path.join(lab.sot, profile), 'utf8');
  const before = await powerLog(lab);
  // Only a change of what a host boots reprovisions it: the new check comes with a new marker.
  const sha7 = await commit(
    lab,
    {
      [profile]: (s) =>
        s
          .replace('path: booted, equals: true', 'path: marker, equals: "never"')
          .replace('retries: 5', 'retries: 0'),
      'os/lab-linux.yaml': (s) => s.replace(/vaquero\.marker=([^\s{]+)/, 'vaquero.marker=$1-unvalidated'),
    },
    'a validation that cannot pass',
  );
  const id = `rollout/lab/${sha7}`;
  await waitRollout(lab.client, id, 'halted');
  const touched: string[] = [];
  for (const name of MACHINES) if ((await powerSince(lab, name, before)).length > 0) touched.push(name);
  assert.equal(touched.length, 1, `only the canary was power-cycled: ${touched.join(', ')}`);
  t.diagnostic(`validation halt: only ${touched.join('')} power-cycled`);
  // The check as it was; a change of validation alone reprovisions nothing.
  await abortRollout(lab.client, id);
  await commit(lab, { [profile]: () => check }, 'the validation as before');
}
