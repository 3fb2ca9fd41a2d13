import { condition, getExternalWorkflowHandle, workflowInfo } from '@temporalio/workflow';
import type { Wave } from '../schemas/plan';
import type { ClosedHost, RolloutCarry, SiteRolloutInput } from '../schemas/rollout';
import type { RolloutState } from './rollout-state';
import { compactHosts } from './rollout-plan';
import { recordOutcome } from './rollout-hosts';
import { gateCarry } from './rollout-soak';

/** Events after which a site rollout continues as new: its history stays far below Temporal's 10,240 warning. */
export const DEFAULT_HISTORY_LIMIT = 2_500;
/**
 * While a run hands over, hosts keep starting (detached) until the hosts it started attached have
 * ended; should one of those take very long, no host starts past this many times the limit.
 */
const CEILING = 3;

/** A host being reprovisioned: its workflow once started, and whether a switch leaves it running. */
export interface RunningHost {
  workflowId?: string;
  /** Started with parent close policy ABANDON: it survives this run's continue-as-new. */
  detached: boolean;
  /** Its start was acknowledged: until then a switch would leave the start command behind. */
  started: boolean;
  /** Started by an earlier run: its outcome comes from awaitHostsClosed, not from a child result. */
  adopted: boolean;
}

/** What the hand-over needs of a site rollout. */
export interface Switchable {
  readonly state: RolloutState;
  readonly input: SiteRolloutInput;
  readonly running: Map<string, RunningHost>;
  readonly retries: string[];
  readonly paused: boolean;
  readonly approved: boolean;
  /** Where the plan is stored: the carry then holds host states compactly. */
  readonly planKey: string | undefined;
  /** Set once the canary (and its approval) are behind: only the slot scheduler's phase switches. */
  switchable: boolean;
  switching: boolean;
  /** No host workflow starts any more: the switch is imminent. */
  frozen: boolean;
  /** Hosts start by activity, none attached to a run: the switch waits only for starts in flight. */
  readonly byActivity?: boolean;
  stopping(): boolean;
}

const limitOf = (r: Switchable) => r.input.historyLimit ?? DEFAULT_HISTORY_LIMIT;

/** Whether no more host may start until the switch: the hand-over has taken too long. */
export function pastCeiling(r: Switchable): boolean {
  return r.switching && workflowInfo().historyLength >= limitOf(r) * CEILING;
}

/**
 * Resolves when this run should continue as new: its history has passed the limit (or the server
 * suggests it), and every host it started attached (REQUEST_CANCEL, so that terminating the rollout
 * cancels them) has ended. Meanwhile new hosts start detached, so there is no barrier. Never
 * resolves once the rollout is stopping: it then closes instead.
 */
export async function handOverWhenDue(r: Switchable): Promise<'switch'> {
  const over = () => {
    const info = workflowInfo();
    return info.historyLength >= limitOf(r) || info.continueAsNewSuggested;
  };
  await condition(() => r.stopping() || (r.switchable && over()));
  if (!r.stopping()) {
    r.switching = true;
    if (r.byActivity) r.frozen = true;
    const attached = () => [...r.running.values()].some((h) => h.workflowId && (!h.detached || !h.started));
    await condition(() => r.stopping() || !attached());
    // A host may have been started in the very activation that ended the wait: let its start land.
    r.frozen = true;
    await condition(() => r.stopping() || !attached());
  }
  if (r.stopping()) await condition(() => false);
  return 'switch';
}

/** The compact state the next run starts from; call it after the handlers have drained. */
export function carryOf(r: Switchable): RolloutCarry {
  const hosts = JSON.parse(JSON.stringify(r.state.hosts)) as NonNullable<RolloutCarry['hosts']>;
  const retries = [...r.retries];
  const inFlight: RolloutCarry['inFlight'] = [];
  for (const [host, run] of r.running) {
    const entry = hosts[host];
    if (run.workflowId) inFlight.push({ host, workflowId: run.workflowId });
    // Waiting for its reboot window, no workflow yet: the next run starts (or retries) it again.
    else if (entry?.state === 'failed') retries.push(host);
    else if (entry) entry.step = undefined;
  }
  return {
    run: (r.input.carry?.run ?? 1) + 1,
    wave: r.state.wave,
    paused: r.paused,
    approved: r.approved,
    retries,
    // A stored plan's hosts carry in a character each; only older rollouts carry every record.
    ...(r.planKey ? { planKey: r.planKey, ...compactHosts({ plan: r.state.plan, hosts }) } : { hosts }),
    inFlight,
    ...gateCarry(r),
  };
}

/** The waves' hosts that no run has started yet. */
export function unstarted(state: RolloutState, waves: Wave[]): Wave[] {
  const waiting = (host: string) => ['pending', 'carried-over'].includes(state.host(host).state);
  return waves.map((w) => ({ ...w, hosts: w.hosts.filter((h) => waiting(h.host)) }));
}

/** Takes the carried hosts in flight as this run's own: they hold their group's slots until they end. */
export function adoptCarried(r: Switchable, carry: RolloutCarry): void {
  if (carry.hosts)
    Object.assign(r.state.hosts, JSON.parse(JSON.stringify(carry.hosts)) as RolloutCarry['hosts']);
  r.state.wave = carry.wave;
  r.retries.push(...carry.retries);
  for (const { host, workflowId } of carry.inFlight) {
    r.running.set(host, { workflowId, detached: true, started: true, adopted: true });
    r.state.begin(r.state.host(host).group);
  }
  r.state.touch();
}

/** A carried host closed: its outcome recorded, its slot freed. */
export function record(r: Switchable, host: string, closed: ClosedHost): void {
  const entry = r.state.host(host);
  recordOutcome(entry, closed, undefined);
  r.running.delete(host);
  r.state.end(entry.group);
}

/** Follows the adopted hosts until each has ended, recording how. */
export async function followAdopted(
  r: Switchable,
  awaitHostsClosed: (input: {
    workflowIds: string[];
    parent?: string;
    since?: string;
  }) => Promise<ClosedHost[]>,
): Promise<void> {
  const adopted = () => [...r.running].filter(([, h]) => h.adopted && h.workflowId);
  for (let open = adopted(); open.length > 0; open = adopted()) {
    const hostOf = new Map(open.map(([host, h]) => [h.workflowId!, host]));
    const info = workflowInfo();
    const closed = await awaitHostsClosed({
      workflowIds: [...hostOf.keys()],
      parent: info.workflowId,
      since: info.runStartTime.toISOString(),
    });
    for (const c of closed) {
      const host = hostOf.get(c.workflowId);
      if (host) record(r, host, c);
    }
  }
}

/** Aborted: the adopted hosts are no children of this run, so they are cancelled by name (they disarm). */
export async function cancelAdopted(r: Switchable): Promise<void> {
  const ids = [...r.running.values()].filter((h) => h.adopted && h.workflowId).map((h) => h.workflowId!);
  await Promise.all(
    ids.map((id) =>
      getExternalWorkflowHandle(id)
        .cancel()
        .catch(() => undefined),
    ),
  );
}
