import { proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { ServerActivities } from '../activities/server-activities';
import type { PlannedHost, SitePlan } from '../schemas/plan';
import type {
  HostProgress,
  RolloutCarry,
  RolloutPhase,
  SiteRolloutInput,
  SiteRolloutResult,
} from '../schemas/rollout';

import type { RolloutState } from './rollout-state';
import { HOST_STATE_CODES, hostStateOf, own, SERVER_TASK_QUEUE } from '../schemas/runtime';

// A part is one marker in the history: a 10,000-host plan is about ten of them per run.
const local = proxyLocalActivities<ServerActivities>({ startToCloseTimeout: '1 minute' });
const { awaitRolloutClosed, replanSite, takeOverPlan } = proxyActivities<ServerActivities>({
  taskQueue: SERVER_TASK_QUEUE,
  startToCloseTimeout: '30 days',
  heartbeatTimeout: '1 minute',
});

/** A rollout's failures and steps are kept to this length in carries: a stack trace is not the point. */
const ERROR_CHARS = 200;
/** Results of sites up to this size also list succeeded and remaining hosts by name. */
export const RESULT_LIST_LIMIT = 1_000;

/** Until a stored plan is read: a rollout of no hosts. */
export const NO_PLAN: SitePlan = {
  site: '',
  name: '',
  approval_required: false,
  canary_size: 0,
  max_fail: 0,
  groups: [],
  waves: [],
  unchanged: [],
  removed: [],
  skipped: [],
};

/** Reads a stored plan part by part: no payload holds more than one part of it. */
export async function loadPlan(key: string): Promise<SitePlan> {
  let part = await local.loadPlanPart({ key, offset: 0 });
  const head = part.head;
  if (!head) throw new Error(`plan ${key}: its first part has no head`);
  // Soak and gates, when the plan has them (plans of older releases have neither).
  const waves = head.waves.map(({ hosts: _count, ...w }) => ({ ...w, hosts: [] as PlannedHost[] }));
  const byIndex = new Map<number, SitePlan['waves'][number]>(waves.map((w) => [w.index, w]));
  for (;;) {
    for (const { wave, ...host } of part.hosts) byIndex.get(wave)?.hosts.push(host);
    if (part.next === undefined) break;
    part = await local.loadPlanPart({ key, offset: part.next });
  }
  return { ...head, waves, unchanged: [], removed: [], skipped: [] };
}

/** What a takeover needs of a site rollout. */
export interface TakingOver {
  readonly input: SiteRolloutInput;
  readonly state: RolloutState;
  planKey: string | undefined;
  setPhase(phase: RolloutPhase, waitingFor?: string): void;
}

/** With `supersedes`: waits for the previous rollout, and takes over the hosts it did not reach. */
export async function takeOver(r: TakingOver): Promise<void> {
  const { input } = r;
  if (!input.supersedes) return;
  const { workflowId, commit } = input.supersedes;
  r.setPhase('waiting-previous', `rollout ${workflowId} to finish its hosts in flight`);
  const { site } = input;
  if (r.planKey) {
    const taken = await takeOverPlan({ commit: input.commit, previous: commit, site, workflowId });
    if (taken) r.state.reset(await loadPlan((r.planKey = taken.planKey)));
    return;
  }
  const previous = await awaitRolloutClosed({ workflowId });
  if (previous?.remaining && previous.remaining.length > 0) {
    const carried = { hosts: previous.remaining, reason: `carried over from ${workflowId}` };
    r.state.reset(await replanSite({ commit: input.commit, previous: commit, site, carried }));
  }
}

function planOrder(plan: SitePlan): string[] {
  return plan.waves.flatMap((w) => w.hosts.map((h) => h.host));
}

/** Every host's state, one character each in plan order. */
export function encodeStates(state: Pick<RolloutState, 'plan' | 'hosts'>): string {
  return planOrder(state.plan)
    .map((name) => HOST_STATE_CODES[own(state.hosts, name)?.state ?? 'pending'])
    .join('');
}

const startedAttempts = (s: HostProgress['state']) => (s === 'pending' || s === 'carried-over' ? 0 : 1);

/** The part of a carry that replaces `hosts`: states in plan order, and per host only what they miss. */
export function compactHosts(
  state: Pick<RolloutState, 'plan' | 'hosts'>,
): Pick<RolloutCarry, 'states' | 'extra'> {
  const extra: NonNullable<RolloutCarry['extra']> = {};
  for (const name of planOrder(state.plan)) {
    const h = own(state.hosts, name);
    if (!h) continue;
    const more: NonNullable<RolloutCarry['extra']>[string] = {};
    if (h.attempt !== startedAttempts(h.state)) more.attempt = h.attempt;
    if (h.step) more.step = h.step;
    if (h.failedAt) more.failedAt = h.failedAt;
    if (h.error) more.error = h.error.slice(0, ERROR_CHARS);
    if (Object.keys(more).length > 0)
      Object.defineProperty(extra, name, {
        value: more,
        enumerable: true,
        writable: true,
        configurable: true,
      });
  }
  return { states: encodeStates(state), extra };
}

/** Restores what `compactHosts` kept, onto a state built from the same plan. */
export function restoreHosts(state: RolloutState, carry: RolloutCarry): void {
  const names = planOrder(state.plan);
  const states = carry.states ?? '';
  names.forEach((name, i) => {
    const entry = own(state.hosts, name);
    if (!entry) return;
    entry.state = hostStateOf(states[i]) ?? entry.state;
    const more = carry.extra ? own(carry.extra, name) : undefined;
    entry.attempt = more?.attempt ?? startedAttempts(entry.state);
    entry.step = more?.step;
    entry.failedAt = more?.failedAt;
    entry.error = more?.error;
  });
  state.touch();
}

/** A stored plan's rollout reports counts and states; names only for small sites. */
export function compactResult(
  base: Pick<SiteRolloutResult, 'site' | 'commit' | 'phase'>,
  state: RolloutState,
  planKey: string,
): SiteRolloutResult {
  const succeeded = [...state.names('succeeded'), ...state.names('skipped')].sort();
  const remaining = [...state.names('pending'), ...state.names('carried-over')].sort();
  const failed = state.names('failed');
  const small = Object.keys(state.hosts).length <= RESULT_LIST_LIMIT;
  return {
    ...base,
    failed,
    ...(small ? { succeeded, remaining } : {}),
    counts: { succeeded: succeeded.length, failed: failed.length, remaining: remaining.length },
    planKey,
    states: encodeStates(state),
  };
}
