import {
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowFailure,
  condition,
  isCancellation,
  proxyActivities,
  setHandler,
  sleep,
  startChild,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { ServerActivities } from '../activities/server-activities';
import type { PlannedHost } from '../schemas/plan';
import {
  hostWorkflowId,
  SERVER_TASK_QUEUE,
  type ReprovisionHostResult,
  type ResumePoint,
  type SiteRolloutInput,
  type SiteRolloutResult,
} from '../schemas/rollout';
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
import { reprovisionHostWorkflow } from './reprovision-host';
import { RolloutState } from './rollout-state';

const { awaitRolloutClosed, replanSite } = proxyActivities<ServerActivities>({
  taskQueue: SERVER_TASK_QUEUE,
  startToCloseTimeout: '30 days',
  heartbeatTimeout: '1 minute',
});

function failureOf(err: unknown): { failedAt?: ResumePoint; error: string } {
  if (err instanceof ChildWorkflowFailure && err.cause instanceof ApplicationFailure) {
    const result = err.cause.details?.[0] as ReprovisionHostResult | undefined;
    return { failedAt: result?.failedAt, error: result?.error ?? err.cause.message };
  }
  return { error: err instanceof Error ? err.message : String(err) };
}

/**
 * Rolls one commit out to one site: the plan's waves in order, canary first, each host in a
 * reboot window of its group; halts when the failure budget is spent; pause, resume, approve,
 * abort, retry-host and supersede by signal; `status` by query.
 */
export async function siteRolloutWorkflow(input: SiteRolloutInput): Promise<SiteRolloutResult> {
  const state = new RolloutState(input.site, input.commit, input.plan);
  let paused = false;
  let approved = false;
  let aborted: string | undefined;
  let supersededBy: string | undefined;
  const retries: string[] = [];
  const stopping = () => aborted !== undefined || supersededBy !== undefined;
  const abortScope = new CancellationScope();

  const setPhase = (phase: typeof state.phase, waitingFor?: string) => {
    state.phase = phase;
    state.waitingFor = waitingFor;
    upsertSearchAttributes([{ key: PhaseAttribute, value: phase }]);
  };
  upsertSearchAttributes([
    { key: SiteAttribute, value: input.site },
    { key: CommitAttribute, value: input.commit },
  ]);

  setHandler(statusQuery, () => state.status());
  setHandler(pauseSignal, () => void (paused = true));
  setHandler(resumeSignal, () => void (paused = false));
  setHandler(approveSignal, () => void (approved = true));
  setHandler(abortSignal, (reason) => {
    aborted = reason ?? 'aborted by an operator';
    abortScope.cancel();
  });
  setHandler(supersedeSignal, (commit) => void (supersededBy = commit));
  setHandler(retryHostSignal, (host) => {
    if (state.hosts[host]?.state === 'failed' && !retries.includes(host)) retries.push(host);
  });

  const groupWindows = (group: string) =>
    state.plan.groups.find((g) => g.group === group)?.reboot_windows ?? [];

  const runHost = async (planned: PlannedHost): Promise<void> => {
    const entry = state.host(planned.host);
    for (;;) {
      const wait = msUntilOpen(groupWindows(planned.group), Date.now());
      if (wait === 0) break;
      entry.step = 'waiting for its reboot window';
      await sleep(wait);
    }
    entry.attempt += 1;
    entry.state = 'running';
    entry.step = undefined;
    entry.error = undefined;
    const resumeFrom = entry.attempt > 1 ? entry.failedAt : undefined;
    try {
      const child = await startChild(reprovisionHostWorkflow, {
        workflowId: hostWorkflowId(input.site, planned.host, input.commit, entry.attempt),
        args: [
          {
            site: input.site,
            host: planned.host,
            commit: input.commit,
            attempt: entry.attempt,
            resumeFrom,
            timeouts: input.timeouts,
          },
        ],
        staticSummary: `reprovision ${input.site}/${planned.host} (${planned.group}) for ${input.commit.slice(0, 7)}`,
        staticDetails: `Why: ${planned.reasons.join(', ')}`,
      });
      const result = await child.result();
      entry.state = result.skipped ? 'skipped' : 'succeeded';
    } catch (err) {
      if (isCancellation(err)) {
        // Aborted mid-reprovision: not done, so it stays for a later rollout to take over.
        entry.state = 'pending';
        entry.step = `cancelled: ${aborted ?? 'aborted'}`;
        throw err;
      }
      const failure = failureOf(err);
      entry.state = 'failed';
      entry.error = failure.error;
      entry.failedAt = failure.failedAt;
    }
  };

  const retryLoop = async () => {
    for (;;) {
      await condition(() => retries.length > 0);
      const host = retries.shift();
      const planned = host
        ? state.plan.waves.flatMap((w) => w.hosts).find((h) => h.host === host)
        : undefined;
      if (planned) await runHost(planned);
    }
  };

  /** Waits while paused or halted; returns false when the rollout must stop starting hosts. */
  const mayStart = async (): Promise<boolean> => {
    for (;;) {
      if (stopping()) return false;
      const spent = state.budgetSpent();
      if (spent) setPhase('halted', `${spent}: retry-host or abort`);
      else if (paused) setPhase('paused', 'resume signal');
      else return true;
      // Wake on anything that can change the answer: a signal, or a retried host's outcome.
      const before = { paused, failures: state.failures() };
      await condition(() => stopping() || paused !== before.paused || state.failures() !== before.failures);
    }
  };

  const main = async () => {
    if (input.supersedes) {
      const { workflowId, commit } = input.supersedes;
      setPhase('waiting-previous', `rollout ${workflowId} to finish its hosts in flight`);
      const previous = await awaitRolloutClosed({ workflowId });
      if (previous && previous.remaining.length > 0) {
        const carried = { hosts: previous.remaining, reason: `carried over from ${workflowId}` };
        state.reset(await replanSite({ commit: input.commit, previous: commit, site: input.site, carried }));
      }
    }
    for (const wave of state.plan.waves) {
      if (!(await mayStart())) break;
      state.wave = wave.index;
      setPhase('running');
      await Promise.all(wave.hosts.map((h) => runHost(h)));
      if (wave.canary && state.failures() > 0) {
        // A failed canary halts whatever the failure budget: the change itself is suspect.
        setPhase('halted', 'the canary failed: retry-host or abort');
        await condition(() => stopping() || state.failures() === 0);
      }
      if (wave.canary && state.plan.approval_required && !stopping()) {
        setPhase('waiting-approval', 'approve signal (site policy: approval required after the canary)');
        await condition(() => approved || stopping());
      }
    }
    await mayStart();
  };

  try {
    await abortScope.run(() => {
      void retryLoop().catch(() => undefined);
      return main();
    });
  } catch (err) {
    if (!isCancellation(err)) throw err;
  }
  setPhase(aborted ? 'aborted' : supersededBy ? 'superseded' : state.budgetSpent() ? 'halted' : 'completed');
  return {
    site: input.site,
    commit: input.commit,
    phase: state.phase,
    succeeded: [...state.names('succeeded'), ...state.names('skipped')].sort(),
    failed: state.names('failed'),
    remaining: [...state.names('pending'), ...state.names('carried-over')].sort(),
  };
}
