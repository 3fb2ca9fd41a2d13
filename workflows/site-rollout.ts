import {
  allHandlersFinished,
  CancellationScope,
  condition,
  continueAsNew,
  isCancellation,
  patched,
  proxyActivities,
  setHandler,
  sleep,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { ServerActivities } from '../activities/server-activities';
import type { PlannedHost } from '../schemas/plan';
import type { SiteRolloutInput, SiteRolloutResult } from '../schemas/rollout';
import { CommitAttribute, PhaseAttribute, SiteAttribute } from '../schemas/search-attributes';
import {
  abortSignal,
  approveSignal,
  pauseSignal,
  resumeSignal,
  retryHostSignal,
  statusQuery,
  supersedeSignal,
} from './messages';
import { msUntilOpen } from './reboot-window';
import { startBySlots } from './rollout-slots';
import { soakCanary } from './rollout-soak';
import {
  adoptCarried,
  cancelAdopted,
  carryOf,
  followAdopted,
  handOverWhenDue,
  pastCeiling,
  record,
  unstarted,
  type RunningHost,
} from './rollout-switch';
import { RolloutState } from './rollout-state';
import { HostStarter, recordOutcome } from './rollout-hosts';
import { failureOf, runAsChild } from './rollout-child';
import { compactResult, loadPlan, NO_PLAN, restoreHosts, takeOver } from './rollout-plan';
import { retryLoop } from './rollout-retries';
import { abortRollout, setUpdateHandlers } from './rollout-updates';
import { hostWorkflowId, own, SERVER_TASK_QUEUE } from '../schemas/runtime';

const { awaitHostsClosed } = proxyActivities<ServerActivities>({
  taskQueue: SERVER_TASK_QUEUE,
  startToCloseTimeout: '30 days',
  heartbeatTimeout: '1 minute',
});

/** One site rollout: its plan's progress and what the signals asked for. */
class SiteRollout {
  readonly state: RolloutState;
  paused = false;
  approved = false;
  aborted: string | undefined;
  supersededBy: string | undefined;
  readonly retries: string[] = [];
  readonly abortScope = new CancellationScope();
  /** Retries side by side within max_concurrent, and no close while a host is in flight (patched). */
  readonly sideBySide: boolean;
  /** Host children are cancelled, so they disarm, when the rollout closes or is terminated (patched). */
  readonly cancelOnClose: boolean;
  /** After the canary, each host starts as soon as a slot frees, not wave by wave (patched). */
  readonly noBarrier: boolean;
  /** Continues as new past a history limit, hosts in flight carried over (patched). */
  readonly canSwitch: boolean;
  /** Hosts run as reprovisionHostWorkflowV2, their group set at start (patched). */
  readonly hostV2: boolean;
  /** Hosts are started in batches by activity and followed by visibility, not children (patched). */
  readonly byActivity: boolean;
  starter: HostStarter | undefined;
  switchable = false;
  switching = false;
  frozen = false;
  readonly running = new Map<string, RunningHost>();
  /** Where the plan is stored (rollouts of this release), or undefined: the input holds it. */
  planKey: string | undefined;
  /** The stored plan is read and the carried progress restored: host names mean something. */
  ready: boolean;

  constructor(readonly input: SiteRolloutInput) {
    this.planKey = input.carry?.planKey ?? input.planKey;
    this.ready = this.planKey === undefined;
    this.state = new RolloutState(input.site, input.commit, input.plan ?? NO_PLAN);
    this.sideBySide = patched('rollout-retries-side-by-side');
    this.state.retriesCount = this.sideBySide;
    this.cancelOnClose = patched('host-cancel-on-close');
    this.noBarrier = patched('rollout-no-wave-barrier');
    this.canSwitch = patched('rollout-continue-as-new');
    this.hostV2 = patched('host-workflow-v2');
    this.byActivity = this.hostV2 && this.canSwitch && patched('hosts-started-by-activity');
    if (input.carry) {
      if (this.ready) adoptCarried(this, input.carry);
      this.paused = input.carry.paused;
      this.approved = input.carry.approved;
    }
  }

  /** Reads the stored plan and restores the carried progress; retries asked for meanwhile are kept. */
  async load(): Promise<void> {
    if (this.ready || !this.planKey) return;
    this.state.reset(await loadPlan(this.planKey));
    const { carry } = this.input;
    if (carry) {
      restoreHosts(this.state, carry);
      adoptCarried(this, carry);
    }
    this.ready = true;
    this.keepFailedRetries();
  }

  private keepFailedRetries(): void {
    const keep = [...new Set(this.retries)].filter((h) => own(this.state.hosts, h)?.state === 'failed');
    this.retries.splice(0, this.retries.length, ...keep);
  }

  stopping(): boolean {
    return this.aborted !== undefined || this.supersededBy !== undefined;
  }

  setPhase(phase: RolloutState['phase'], waitingFor?: string): void {
    this.state.phase = phase;
    this.state.waitingFor = waitingFor;
    upsertSearchAttributes([{ key: PhaseAttribute, value: phase }]);
  }

  runInfo() {
    return this.canSwitch ? { run: this.input.carry?.run ?? 1, switching: this.switching } : {};
  }

  setHandlers(): void {
    const { state } = this;
    setHandler(statusQuery, (page) => ({ ...state.status(page), ...this.runInfo() }));
    setHandler(pauseSignal, () => void (this.paused = true));
    setHandler(resumeSignal, () => void (this.paused = false));
    setHandler(approveSignal, () => void (this.approved = true));
    setHandler(abortSignal, (reason) => abortRollout(this, reason));
    setUpdateHandlers(this);
    setHandler(supersedeSignal, (commit) => void (this.supersededBy = commit));
    setHandler(retryHostSignal, (host) => {
      // Before the stored plan is read no host is known yet: kept, and checked once it is.
      const failed = !this.ready || own(state.hosts, host)?.state === 'failed';
      if (failed && !this.retries.includes(host)) this.retries.push(host);
    });
  }

  /** Reprovisions a host, counted in flight (holding a slot of its group) until it ends. */
  async runHost(planned: PlannedHost): Promise<void> {
    this.state.begin(planned.group);
    this.running.set(planned.host, { detached: false, started: false, adopted: false });
    try {
      await this.reprovision(planned);
    } finally {
      this.running.delete(planned.host);
      this.state.end(planned.group);
    }
  }

  /** Waits for the host group's reboot window, then reprovisions the host in a child workflow. */
  async reprovision(planned: PlannedHost): Promise<void> {
    const { input, state } = this;
    const entry = state.host(planned.host);
    for (;;) {
      const windows = state.plan.groups.find((g) => g.group === planned.group)?.reboot_windows ?? [];
      const wait = msUntilOpen(windows, Date.now());
      if (wait === 0) break;
      entry.step = 'waiting for its reboot window';
      await sleep(wait);
    }
    // About to continue as new, whose run starts this host; or stopping, and the host is not reached.
    if (this.frozen) return void (await condition(() => this.stopping()));
    entry.attempt += 1;
    entry.state = 'running';
    entry.step = undefined;
    entry.error = undefined;
    state.touch();
    const resumeFrom = entry.attempt > 1 ? entry.failedAt : undefined;
    const workflowId = hostWorkflowId(input.site, planned.host, input.commit, entry.attempt);
    // Started while this run hands over: it must outlive the run, whose next run follows it.
    const detached = this.switching;
    const running: RunningHost = { workflowId, detached, started: false, adopted: false };
    if (this.canSwitch) this.running.set(planned.host, running);
    try {
      if (this.starter) {
        const closed = await this.starter.run(
          {
            host: planned.host,
            group: planned.group,
            attempt: entry.attempt,
            resumeFrom,
            reasons: planned.reasons,
          },
          () => Object.assign(running, { started: true, detached: true }),
        );
        recordOutcome(entry, closed, this.aborted);
        return;
      }
      entry.state = await runAsChild(
        this,
        planned,
        { workflowId, attempt: entry.attempt, resumeFrom, detached },
        running,
      );
    } catch (err) {
      if (isCancellation(err)) {
        // Aborted mid-reprovision: not done, so it stays for a later rollout to take over.
        entry.state = 'pending';
        entry.step = `cancelled: ${this.aborted ?? 'aborted'}`;
        throw err;
      }
      const failure = failureOf(err);
      entry.state = 'failed';
      entry.error = failure.error;
      entry.failedAt = failure.failedAt;
    }
  }

  planned(host: string): PlannedHost | undefined {
    return this.state.plan.waves.flatMap((w) => w.hosts).find((h) => h.host === host);
  }

  /** Closes only when no host is in flight or waiting to be retried, and the rollout is not halted. */
  async settle(): Promise<void> {
    const { state } = this;
    for (;;) {
      const going = await this.mayStart();
      await condition(() => state.inFlight() === 0 && (this.stopping() || this.retries.length === 0));
      if (!going || this.stopping() || !state.budgetSpent()) return;
    }
  }

  /** Waits while paused or halted; returns false when the rollout must stop starting hosts. */
  async mayStart(): Promise<boolean> {
    const { state } = this;
    for (;;) {
      if (this.stopping()) return false;
      if (pastCeiling(this)) {
        await condition(() => this.stopping());
        continue;
      }
      const spent = state.budgetSpent();
      if (spent) this.setPhase('halted', `${spent}: retry-host or abort`);
      else if (this.paused) this.setPhase('paused', 'resume signal');
      else return true;
      // Wake on anything that can change the answer: a signal, or a retried host's outcome.
      const before = { paused: this.paused, failures: state.failures() };
      await condition(
        () => this.stopping() || this.paused !== before.paused || state.failures() !== before.failures,
      );
    }
  }

  async main(): Promise<void> {
    const { state } = this;
    const { carry } = this.input;
    if (!carry) await takeOver(this);
    for (const wave of state.plan.waves) {
      if (this.noBarrier && !wave.canary) {
        this.switchable = this.canSwitch;
        const rest = state.plan.waves.slice(state.plan.waves.indexOf(wave));
        await startBySlots(this, carry ? unstarted(state, rest) : rest);
        break;
      }
      // A continued run: the canary and its approval were behind the run that handed over.
      if (carry) continue;
      if (!(await this.mayStart())) break;
      state.wave = wave.index;
      this.setPhase('running');
      const runs: Promise<void>[] = [];
      for (const h of wave.hosts) {
        if (this.sideBySide) await condition(() => state.hasSlot(h.group));
        runs.push(this.runHost(h));
      }
      await Promise.all(runs);
      if (wave.canary && state.failures() > 0) {
        // A failed canary halts whatever the failure budget: the change itself is suspect.
        this.setPhase('halted', 'the canary failed: retry-host or abort');
        await condition(() => this.stopping() || state.failures() === 0);
      }
      if (wave.canary) await soakCanary(this, wave);
      if (wave.canary && state.plan.approval_required && !this.stopping()) {
        this.setPhase('waiting-approval', 'approve signal (site policy: approval required after the canary)');
        await condition(() => this.approved || this.stopping());
      }
    }
    if (this.sideBySide) await this.settle();
    else await this.mayStart();
  }

  result(): SiteRolloutResult {
    const { input, state } = this;
    const base = { site: input.site, commit: input.commit, phase: state.phase };
    if (this.planKey) return compactResult(base, state, this.planKey);
    return {
      ...base,
      succeeded: [...state.names('succeeded'), ...state.names('skipped')].sort(),
      failed: state.names('failed'),
      remaining: [...state.names('pending'), ...state.names('carried-over')].sort(),
    };
  }
}

/**
 * Rolls one commit out to one site: the plan's waves in order, canary first, each host in a
 * reboot window of its group; halts when the failure budget is spent; pause, resume, approve,
 * abort, retry-host and supersede by signal, the operator's commands also by Update; `status` by query.
 */
export async function siteRolloutWorkflow(input: SiteRolloutInput): Promise<SiteRolloutResult> {
  const rollout = new SiteRollout(input);
  upsertSearchAttributes([
    { key: SiteAttribute, value: input.site },
    { key: CommitAttribute, value: input.commit },
  ]);
  rollout.setHandlers();
  await rollout.load();
  if (rollout.byActivity) {
    const starter = (rollout.starter = new HostStarter(rollout, (host, closed) =>
      record(rollout, host, closed),
    ));
    void starter.pump();
    void starter.follow();
  } else if (input.carry) void followAdopted(rollout, awaitHostsClosed);
  try {
    const main = rollout.abortScope.run(() => {
      void retryLoop(rollout).catch(() => undefined);
      return rollout.main();
    });
    const handOver = rollout.canSwitch ? handOverWhenDue(rollout) : new Promise<never>(() => undefined);
    if ((await Promise.race([main, handOver])) === 'switch') {
      // Signals that came before the switch are in the carry; the server refuses the switch over later ones.
      await condition(allHandlersFinished);
      return await continueAsNew<typeof siteRolloutWorkflow>({ ...input, carry: carryOf(rollout) });
    }
  } catch (err) {
    if (!isCancellation(err)) throw err;
  }
  if (rollout.aborted) await (rollout.starter ? rollout.starter.cancelAll() : cancelAdopted(rollout));
  // Aborted: the hosts in flight are being cancelled; their disarm is part of the rollout.
  if (rollout.sideBySide) await condition(() => rollout.state.inFlight() === 0);
  const { aborted, supersededBy, state } = rollout;
  rollout.setPhase(
    aborted ? 'aborted' : supersededBy ? 'superseded' : state.budgetSpent() ? 'halted' : 'completed',
  );
  return rollout.result();
}
