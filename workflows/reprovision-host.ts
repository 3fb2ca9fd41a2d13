import {
  type ActivityOptions,
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  log,
  patched,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { AgentActivities } from '../activities/agent-activities';
import type { ServerActivities } from '../activities/server-activities';
import {
  agentTaskQueue,
  DEFAULT_STEP_TIMEOUTS,
  HOST_STEPS,
  SERVER_TASK_QUEUE,
  type BootEvent,
  type BootEventKind,
  type HostSpec,
  type HostStep,
  type JobOutcome,
  type ReprovisionHostInput,
  type ReprovisionHostResult,
  type ResumePoint,
  type StepTimeouts,
} from '../schemas/rollout';
import { HostGroupAttribute } from '../schemas/search-attributes';
import { bootEventSignal, hostStatusQuery } from './messages';

const { loadHostSpec, siteReachability } = proxyActivities<ServerActivities>({
  taskQueue: SERVER_TASK_QUEUE,
  startToCloseTimeout: '1 minute',
});

/** How often a host waiting for its site's silent agents asks again whether they are back. */
const UNREACHABLE_RECHECK = '1 minute';

/** A failed boot step is retried from the arming that precedes it: a host only boots after a cycle. */
function resumeStep(step: HostStep): HostStep {
  return ['power-cycle', 'dhcp', 'ipxe', 'kernel', 'checkpoint'].includes(step) ? 'arm' : step;
}

/** The innermost message: "Activity task failed" says less than the BMC error it wraps. */
function rootMessage(err: unknown): string {
  let e: unknown = err;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  return e instanceof Error ? e.message : String(e);
}

class StepFailure extends Error {
  constructor(
    readonly at: ResumePoint,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Reprovisions one host for one commit: pre-shutdown jobs, arm netboot, power cycle through the BMC,
 * the boot events of each stage within their timeouts, disarm, validation jobs. A failure names the
 * stage, step and cause, and says where a retry resumes.
 */
export async function reprovisionHostWorkflow(input: ReprovisionHostInput): Promise<ReprovisionHostResult> {
  const timeouts: StepTimeouts = { ...DEFAULT_STEP_TIMEOUTS, ...input.timeouts };
  const queue = agentTaskQueue(input.site);
  // Heartbeats let a crashed agent's activity be retried on its restart within seconds, not minutes.
  const agentOptions: ActivityOptions = {
    taskQueue: queue,
    startToCloseTimeout: '5 minutes',
    heartbeatTimeout: '10 seconds',
    retry: { maximumAttempts: 5, initialInterval: '2 seconds' },
  };
  const jobOptions: ActivityOptions = {
    taskQueue: queue,
    startToCloseTimeout: '4 hours',
    heartbeatTimeout: '1 minute',
    retry: { maximumAttempts: 3 },
  };
  const agent = proxyActivities<AgentActivities>(agentOptions);
  const jobs = proxyActivities<AgentActivities>(jobOptions);
  const events: BootEvent[] = [];
  let current: ResumePoint = { stage: 1, step: 'pre-shutdown' };
  setHandler(bootEventSignal, (event) => void events.push(event));
  setHandler(hostStatusQuery, () => ({ step: current.step, stage: current.stage, events }));

  const target = await loadHostSpec({ commit: input.commit, site: input.site, host: input.host });
  upsertSearchAttributes([{ key: HostGroupAttribute, value: target.group }]);
  if (target.never_provision) {
    return { host: target.host, ok: true, skipped: true, jobs: [] };
  }
  const outcomes: JobOutcome[] = [];
  const workflowId = workflowInfo().workflowId;
  const start = input.resumeFrom ? { ...input.resumeFrom, step: resumeStep(input.resumeFrom.step) } : current;

  const runJobs = async (list: HostSpec['stages'][number]['preShutdown'], what: string) => {
    if (list.length === 0) return;
    const summary = `${what} jobs of ${target.host}: ${list.map((j) => `${j.name} (${j.type})`).join(', ')}`;
    const results = await jobs.runJobs.executeWithOptions({ ...jobOptions, summary }, [
      { host: target.host, ipv4: target.ipv4, mac: target.mac, jobs: list },
    ]);
    outcomes.push(...results);
    const failed = results.find((r) => !r.ok);
    if (failed)
      throw new StepFailure(current, `${what} job ${failed.name} failed: ${failed.error ?? 'unknown error'}`);
  };

  /**
   * A late boot event at a site whose agents are all silent (a partitioned site waits, its hosts not
   * failed: docs/outages.md) is most likely held in the agent's on-disk journal: wait for
   * the agent to be heard from again, then give the event its timeout once more. True when it came.
   * Histories from before this existed replay without the wait (patched).
   */
  const waitOutSilentSite = async (seen: () => boolean, timeoutMs: number): Promise<boolean> => {
    if (!patched('agent-reachability')) return false;
    let waited = false;
    while ((await siteReachability({ site: input.site })) === 'unreachable') {
      if (!waited)
        log.warn('site unreachable: waiting for its agents', { site: input.site, host: input.host });
      waited = true;
      if (await condition(seen, UNREACHABLE_RECHECK)) return true;
    }
    return waited && (await condition(seen, timeoutMs));
  };

  const awaitEvent = async (kind: BootEventKind, since: number, timeoutMs: number, stage: number) => {
    const seen = () =>
      events
        .slice(since)
        .some((e) => e.kind === kind && e.mac === target.mac && (e.stage === undefined || e.stage === stage));
    if (!(await condition(seen, timeoutMs)) && !(await waitOutSilentSite(seen, timeoutMs))) {
      throw new StepFailure(
        current,
        `no ${kind} event from ${target.mac} within ${Math.round(timeoutMs / 1000)} s`,
      );
    }
  };

  try {
    for (const stage of target.stages) {
      if (stage.stage < start.stage) continue;
      let mark = events.length;
      const first = stage.stage === start.stage ? HOST_STEPS.indexOf(start.step) : 0;
      for (const step of HOST_STEPS.slice(first)) {
        current = { stage: stage.stage, step };
        switch (step) {
          case 'pre-shutdown':
            if (stage.stage === 1) await runJobs(stage.preShutdown, 'pre-shutdown');
            break;
          case 'arm':
            mark = events.length;
            await agent.armNetboot({
              mac: target.mac,
              host: target.host,
              commit: input.commit,
              stage: stage.stage,
              workflowId,
            });
            break;
          case 'power-cycle': {
            const key = `${workflowId}/${workflowInfo().runId}/stage-${stage.stage}`;
            const summary = `power-cycle ${target.host} through its ${target.bmc?.type ?? 'missing'} BMC`;
            const result = await agent.powerCycle.executeWithOptions({ ...agentOptions, summary }, [
              { site: target.site, host: target.host, mac: target.mac, bmc: target.bmc, key },
            ]);
            log.info('power cycle', { host: target.host, ...result });
            break;
          }
          case 'dhcp':
          case 'ipxe':
          case 'checkpoint':
            await awaitEvent(step, mark, timeouts[step], stage.stage);
            break;
          case 'kernel':
            if (stage.kernelFromAgent) await awaitEvent('kernel', mark, timeouts.kernel, stage.stage);
            break;
          case 'disarm':
            await agent.disarmNetboot({ mac: target.mac, workflowId });
            break;
          case 'validation':
            await runJobs(stage.validation, 'validation');
            break;
        }
      }
    }
  } catch (err) {
    if (isCancellation(err)) {
      await CancellationScope.nonCancellable(() => agent.disarmNetboot({ mac: target.mac, workflowId }));
      throw err;
    }
    const at = err instanceof StepFailure ? err.at : current;
    const cause = rootMessage(err);
    try {
      await agent.disarmNetboot({ mac: target.mac, workflowId });
    } catch (disarmErr) {
      log.warn('could not disarm after a failure', { host: target.host, error: rootMessage(disarmErr) });
    }
    const result: ReprovisionHostResult = {
      host: target.host,
      ok: false,
      failedAt: at,
      error: cause,
      jobs: outcomes,
      skipped: false,
    };
    throw ApplicationFailure.create({
      type: 'HostReprovisionFailed',
      message: `${target.host}: stage ${at.stage} ${at.step}: ${cause}`,
      nonRetryable: true,
      details: [result],
    });
  }
  return { host: target.host, ok: true, jobs: outcomes, skipped: false };
}
