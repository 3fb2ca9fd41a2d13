// Soak and metric gates (issue 17): the rollout holds after its canary for a soak, and after each later
// wave that has gates while they are watched; a gate that fails halts it until approve or abort.
import {
  ApplicationFailure,
  condition,
  isCancellation,
  patched,
  proxyActivities,
  setCurrentDetails,
} from '@temporalio/workflow';
import type { ServerActivities } from '../activities/server-activities';
import type { GateCheck, PlannedGate } from '../schemas/gates';
import type { Wave } from '../schemas/plan';
import type { RolloutCarry, RolloutPhase, SiteRolloutInput } from '../schemas/rollout';
import { durationMs, SERVER_TASK_QUEUE } from '../schemas/runtime';
import type { RolloutState } from './rollout-state';

const { checkGate } = proxyActivities<ServerActivities>({
  taskQueue: SERVER_TASK_QUEUE,
  startToCloseTimeout: '2 minutes',
  retry: { maximumAttempts: 3 },
});

/** Old histories never had gates; this marks the runs that hold for them. */
export const SOAK_PATCH = 'rollout-soak-gates';

/** What soaking and gating need of a site rollout. */
export interface Soakable {
  readonly state: RolloutState;
  readonly input: SiteRolloutInput;
  approved: boolean;
  stopping(): boolean;
  setPhase(phase: RolloutPhase, waitingFor?: string): void;
}

interface GateProgress {
  /** The last wave whose gates passed, or were approved past. */
  passed: number;
  /** Why a gate halted the rollout, until approve or abort. */
  halt?: string;
}

// Per rollout object, so site-rollout.ts needs no field; restored from the carry on first use.
const progress = new WeakMap<object, GateProgress>();

function progressOf(r: Soakable): GateProgress {
  let p = progress.get(r);
  if (!p) {
    const carried = r.input.carry?.gates;
    p = { passed: carried?.passed ?? 0, halt: carried?.halt };
    progress.set(r, p);
  }
  return p;
}

/** Why a gate halts the rollout now, if one does: approve is then accepted, to go on anyway. */
export function gateHalt(r: object): string | undefined {
  return progress.get(r)?.halt;
}

/** The gates' part of the carry: only once a gate ran, so other rollouts carry what they did before. */
export function gateCarry(r: Pick<Soakable, 'input'>): Pick<RolloutCarry, 'gates'> {
  const p = progress.get(r) ?? r.input.carry?.gates;
  if (!p || (p.passed === 0 && p.halt === undefined)) return {};
  return { gates: { passed: p.passed, ...(p.halt !== undefined ? { halt: p.halt } : {}) } };
}

export const isoSeconds = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

async function check(r: Soakable, gate: PlannedGate, hosts: string[]): Promise<GateCheck> {
  try {
    return await checkGate({ commit: r.input.commit, site: r.input.site, hosts, gate });
  } catch (err) {
    if (isCancellation(err)) throw err;
    const cause = err instanceof Error && err.cause instanceof ApplicationFailure ? err.cause : err;
    const why = cause instanceof Error ? cause.message : String(cause);
    const name = gate.name ?? gate.query;
    const at = isoSeconds(Date.now());
    return {
      ok: false,
      gate: name,
      query: gate.query,
      at,
      reason: `gate ${JSON.stringify(name)} could not be evaluated at ${at}: ${why}`,
    };
  }
}

/** Evaluates each gate every `every` until `until`: a failed check, or how the watch ended. */
async function watch(
  r: Soakable,
  gates: PlannedGate[],
  hosts: string[],
  until: number,
): Promise<GateCheck | 'passed' | 'approved' | 'stopping'> {
  const next = gates.map(() => Date.now());
  for (;;) {
    const now = Date.now();
    const due = gates.filter((_, i) => next[i]! <= now);
    const checks = await Promise.all(due.map((g) => check(r, g, hosts)));
    const failed = checks.find((c) => !c.ok);
    if (failed) return failed;
    gates.forEach((g, i) => {
      if (next[i]! <= now) next[i] = now + durationMs(g.every);
    });
    if (r.stopping()) return 'stopping';
    if (r.approved) return 'approved';
    if (Date.now() >= until) return 'passed';
    const wake = Math.min(until, ...next) - Date.now();
    await condition(() => r.approved || r.stopping(), Math.max(wake, 1));
  }
}

/** Halted by a gate: waits for approve (go on anyway) or abort. */
async function haltWait(r: Soakable): Promise<void> {
  const p = progressOf(r);
  r.approved = false;
  r.setPhase('halted', `${p.halt}: approve to go on anyway, or abort`);
  setCurrentDetails(`halted by a gate: ${p.halt}`);
  await condition(() => r.approved || r.stopping());
  p.halt = undefined;
  setCurrentDetails('');
  if (!r.stopping() && r.state.phase === 'halted') r.setPhase('running');
}

/** Holds for `ms` while the gates are watched over `hosts`; approve cuts it short, abort ends it. */
async function hold(r: Soakable, what: string, gates: PlannedGate[], hosts: string[], ms: number) {
  const until = Date.now() + ms;
  r.approved = false;
  const watched = gates.length > 0 ? `, ${gates.length} gate${gates.length > 1 ? 's' : ''} watched` : '';
  r.setPhase('soaking', `${what} until ${isoSeconds(until)}${watched}: approve cuts it short, abort ends it`);
  setCurrentDetails(`soaking until ${isoSeconds(until)} (${what}${watched})`);
  const end = await watch(r, gates, hosts, until);
  setCurrentDetails('');
  if (typeof end === 'object') {
    progressOf(r).halt = `${end.reason ?? `gate ${end.gate} failed at ${end.at}`} (${what})`;
    await haltWait(r);
  } else if (end !== 'stopping' && r.state.phase === 'soaking') r.setPhase('running');
}

const longestFor = (gates: PlannedGate[]) => Math.max(0, ...gates.map((g) => durationMs(g.for ?? '0s')));

function succeeded(state: RolloutState, wave: Wave): string[] {
  return wave.hosts.map((h) => h.host).filter((h) => ['succeeded', 'skipped'].includes(state.host(h).state));
}

/**
 * After the canary wave: holds for its soak (at least its gates' longest `for`), its gates watched
 * over the canary hosts. Nothing for plans without soak or gates, as before.
 */
export async function soakCanary(r: Soakable, wave: Wave): Promise<void> {
  const gates = wave.gates ?? [];
  if ((!wave.soak && gates.length === 0) || r.stopping() || r.state.failures() > 0) return;
  if (!patched(SOAK_PATCH)) return;
  const ms = Math.max(durationMs(wave.soak ?? '0s'), longestFor(gates));
  await hold(r, "the canary's soak", gates, succeeded(r.state, wave), ms);
}

/**
 * Before a host of wave `next` starts: each earlier wave with gates that has not passed them yet
 * waits for its hosts in flight, then holds while its gates are watched (`for`, or one check).
 * Returns whether it held, so that the caller asks again whether it may start.
 */
export async function gatesBefore(r: Soakable, next: number): Promise<boolean> {
  const p = progressOf(r);
  let held = false;
  if (p.halt !== undefined) {
    await haltWait(r);
    held = true;
  }
  for (const wave of r.state.plan.waves) {
    const gates = wave.gates ?? [];
    if (wave.canary || wave.index >= next || wave.index <= p.passed || gates.length === 0) continue;
    if (r.stopping() || !patched(SOAK_PATCH)) return held;
    held = true;
    const upTo = r.state.plan.waves.filter((w) => w.index <= wave.index).flatMap((w) => w.hosts);
    await condition(() => r.stopping() || upTo.every((h) => r.state.host(h.host).state !== 'running'));
    const hosts = succeeded(r.state, wave);
    if (hosts.length > 0 && !r.stopping())
      await hold(r, `the gates after wave ${wave.index}`, gates, hosts, longestFor(gates));
    if (r.stopping()) return held;
    p.passed = wave.index;
  }
  return held;
}
