import {
  type ActivityOptions,
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  log,
  ActivityFailure,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { AgentActivities } from '../activities/agent-activities';
import type { ServerActivities } from '../activities/server-activities';
import type {
  BootEvent,
  BootEventKind,
  HostStep,
  ReprovisionHostInput,
  ReprovisionHostResult,
  StepTimeouts,
} from '../schemas/rollout';
import { HostGroupAttribute } from '../schemas/search-attributes';
import { impliedBy, impliedStepsAllowed, impliesStep, takeBootBatch } from './boot-steps';
import { BootWatchdog } from './boot-watchdog';
import { awaitImage } from './image-step';
import { attemptNote, powerKey, runStageSteps } from './boot-retries';
import { BootStepMissed, resumeStep, rootMessage, StepFailure } from './host-failure';
import type { HostRun, Stage } from './host-run';
import { bootEventSignal, bootEventsSignal, hostStatusQuery } from './messages';
import {
  agentTaskQueue,
  BOOT_EVENT_BATCH_MAX_MS,
  DEFAULT_STEP_TIMEOUTS,
  HOST_STEPS,
  SERVER_TASK_QUEUE,
} from '../schemas/runtime';

const { loadHostSpec, siteReachability } = proxyActivities<ServerActivities>({
  taskQueue: SERVER_TASK_QUEUE,
  startToCloseTimeout: '1 minute',
});

// The host workflow runs on the server's worker, which has this activity: run locally, it is one
// marker in the history instead of an activity's three events and a workflow task's three.
const local = proxyLocalActivities<ServerActivities>({ startToCloseTimeout: '1 minute' });

/**
 * Newer runs take fewer history events for the same steps (arm and power cycle in one activity, the
 * host spec loaded locally) and always check the boot step order; older histories replay as they ran.
 */
const FOLDED_STEPS = 'fold-host-steps';
/**
 * Newer runs still (on top of FOLDED_STEPS): boot events come in batches, one watchdog timer serves
 * every boot step, and the agent disarms the host itself at its last checkpoint.
 */
const BATCHED = 'boot-event-batches';

/** How often a host waiting for its site's silent agents asks again whether they are back. */
const UNREACHABLE_RECHECK = '1 minute';

async function runJobs(run: HostRun, list: Stage['preShutdown'], what: string): Promise<void> {
  if (list.length === 0) return;
  const { target } = run;
  const summary = `${what} jobs of ${target.host}: ${list.map((j) => `${j.name} (${j.type})`).join(', ')}`;
  const results = await run.jobs.runJobs.executeWithOptions({ ...run.jobOptions, summary }, [
    { host: target.host, ipv4: target.ipv4, mac: target.mac, jobs: list },
  ]);
  run.outcomes.push(...results);
  const failed = results.find((r) => !r.ok);
  if (failed)
    throw new StepFailure(
      run.progress.current,
      `${what} job ${failed.name} failed: ${failed.error ?? 'unknown error'}`,
    );
}

/**
 * A late boot event at a site whose agents are all silent (a partitioned site waits, its hosts not
 * failed: docs/outages.md) is most likely held in the agent's on-disk journal: wait for
 * the agent to be heard from again, then give the event its timeout once more. True when it came.
 * Histories from before this existed replay without the wait (patched).
 */
async function waitOutSilentSite(run: HostRun, seen: () => boolean, timeoutMs: number): Promise<boolean> {
  if (!run.patched('agent-reachability')) return false;
  const { input } = run;
  let waited = false;
  while ((await siteReachability({ site: input.site })) === 'unreachable') {
    if (!waited) log.warn('site unreachable: waiting for its agents', { site: input.site, host: input.host });
    waited = true;
    if (await condition(seen, UNREACHABLE_RECHECK)) return true;
  }
  return waited && (await condition(seen, timeoutMs));
}

async function awaitEvent(
  run: HostRun,
  kind: BootEventKind,
  timeoutMs: number,
  stage: number,
): Promise<void> {
  const { target, progress, mark } = run;
  // Boot steps count only in an order a booting host can take them: a checkpoint seen before the
  // script was fetched, or a kernel before DHCP, is someone else's doing (docs/security.md).
  // Histories from before this existed replay without the order (patched).
  const ordered = run.folded || run.patched('boot-step-order');
  const after = ordered ? run.after : undefined;
  const ofArming = (e: BootEvent) =>
    e.mac === target.mac &&
    (e.stage === undefined || e.stage === stage) &&
    !(after !== undefined && Date.parse(e.at) < after);
  const fits = (e: BootEvent) => e.kind === kind && ofArming(e);
  const seen = () => progress.events.slice(mark).some(fits);
  // A later step's event stands for this one when this one's went down with its agent (boot-steps.ts).
  const implying = (e: BootEvent) => run.batched && ordered && ofArming(e) && impliesStep(e, kind);
  const seenOrImplied = () =>
    seen() || (run.impliedSteps !== false && progress.events.slice(mark).some(implying));
  // An event that came with the previous step's signal needs no timer (two history events fewer).
  const already = run.folded && seenOrImplied();
  const deadline = Date.now() + timeoutMs + BOOT_EVENT_BATCH_MAX_MS;
  let came =
    already ||
    (run.batched ? await run.watchdog.until(seenOrImplied, deadline) : await condition(seen, timeoutMs));
  if (came && !seen() && !impliedStepsAllowed(run)) came = await run.watchdog.until(seen, deadline);
  if (!came && !(await waitOutSilentSite(run, seen, timeoutMs))) {
    throw new BootStepMissed(
      progress.current,
      `no ${kind} event from ${target.mac} within ${Math.round(timeoutMs / 1000)} s`,
    );
  }
  const event = progress.events.slice(mark).find(fits) ?? impliedBy(run, kind, implying);
  if (ordered && event) run.after = Date.parse(event.at);
}

/** Both steps in one agent activity; a failure names the step that failed, as two activities did. */
async function armAndPowerCycle(run: HostRun, stage: Stage): Promise<void> {
  const { target, workflowId } = run;
  const key = powerKey(run, stage);
  const summary = `${attemptNote(run)}arm ${target.host} and power-cycle it through its ${target.bmc?.type ?? 'missing'} BMC`;
  const { site, host, mac, bmc } = target;
  const last = run.target.stages.at(-1)?.stage === stage.stage;
  const input = {
    ...{ site, host, mac, bmc, commit: run.input.commit, stage: stage.stage, workflowId, key },
    ...(run.batched ? { batches: true, disarmAtCheckpoint: last } : {}),
  };
  try {
    const result = await run.agent.armAndPowerCycle.executeWithOptions({ ...run.agentOptions, summary }, [
      input,
    ]);
    log.info('armed and power-cycled', { host: target.host, ...result });
    // A disarm reported while the activity ran may predate its retry's new arming (an agent killed
    // mid-cycle, its host booted meanwhile): only a later report spares the disarm activity.
    run.progress.disarmed = undefined;
  } catch (err) {
    const armFailed =
      err instanceof ActivityFailure &&
      err.cause instanceof ApplicationFailure &&
      err.cause.type === 'ArmFailed';
    throw new StepFailure({ stage: stage.stage, step: armFailed ? 'arm' : 'power-cycle' }, rootMessage(err));
  }
}

async function runStep(run: HostRun, stage: Stage, step: HostStep): Promise<void> {
  const { target, agent, workflowId, timeouts } = run;
  switch (step) {
    case 'pre-shutdown':
      if (stage.stage === 1) await runJobs(run, stage.preShutdown, 'pre-shutdown');
      break;
    case 'arm':
      run.mark = run.progress.events.length;
      run.after = undefined;
      if (run.folded) {
        await armAndPowerCycle(run, stage);
        break;
      }
      await agent.armNetboot({
        mac: target.mac,
        host: target.host,
        commit: run.input.commit,
        stage: stage.stage,
        workflowId,
      });
      break;
    case 'power-cycle': {
      if (run.folded) break;
      const key = powerKey(run, stage);
      const summary = `${attemptNote(run)}power-cycle ${target.host} through its ${target.bmc?.type ?? 'missing'} BMC`;
      const result = await agent.powerCycle.executeWithOptions({ ...run.agentOptions, summary }, [
        { site: target.site, host: target.host, mac: target.mac, bmc: target.bmc, key },
      ]);
      log.info('power cycle', { host: target.host, ...result });
      break;
    }
    case 'dhcp':
    case 'ipxe':
      await awaitEvent(run, step, timeouts[step], stage.stage);
      break;
    case 'checkpoint': {
      await awaitEvent(run, step, timeouts[step], stage.stage);
      // Left running, the boot timer ends with the workflow for free; jobs or a next stage outlast it.
      const more = stage.validation.length > 0 || run.target.stages.at(-1)?.stage !== stage.stage;
      if (run.batched && more) run.watchdog.stop();
      break;
    }
    case 'image':
      if (stage.image) await awaitImage(run, stage, (seen, ms) => waitOutSilentSite(run, seen, ms));
      break;
    case 'kernel':
      if (stage.kernelFromAgent) await awaitEvent(run, 'kernel', timeouts.kernel, stage.stage);
      break;
    case 'disarm':
      if (run.batched && run.progress.disarmed?.stage === stage.stage) {
        log.info('disarmed by the agent at the checkpoint', { host: target.host, ...run.progress.disarmed });
        break;
      }
      await agent.disarmNetboot({ mac: target.mac, workflowId });
      break;
    case 'validation':
      await runJobs(run, stage.validation, 'validation');
      break;
  }
}

/** After a failure: netboot disarmed, and the failure with where a retry resumes, as the workflow's error. */
async function hostFailed(run: HostRun, err: unknown): Promise<never> {
  const { target, agent, workflowId } = run;
  run.watchdog.stop();
  if (isCancellation(err)) {
    await CancellationScope.nonCancellable(() => agent.disarmNetboot({ mac: target.mac, workflowId }));
    throw err;
  }
  const at = err instanceof StepFailure ? err.at : run.progress.current;
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
    jobs: run.outcomes,
    skipped: false,
    ...(run.boot.retried.length > 0 ? { bootRetries: run.boot.retried } : {}),
  };
  throw ApplicationFailure.create({
    type: 'HostReprovisionFailed',
    message: `${target.host}: stage ${at.stage} ${at.step}: ${cause}`,
    nonRetryable: true,
    details: [result],
  });
}

/**
 * Reprovisions one host for one commit: pre-shutdown jobs, arm netboot, power cycle through the BMC,
 * the boot events of each stage within their timeouts, disarm, validation jobs. A failure names the
 * stage, step and cause, and says where a retry resumes. Started by rollouts of earlier releases
 * (and still by hand): every later change is guarded by patched().
 */
export function reprovisionHostWorkflow(input: ReprovisionHostInput): Promise<ReprovisionHostResult> {
  return reprovisionHost(input, false);
}

/**
 * The same workflow as started by rollouts of this release: every change reprovisionHostWorkflow
 * guards with patched() taken, as a type of its own, so a run records no patch marker and no
 * TemporalChangeVersion update; its group search attribute is set by the parent at start. Three
 * history events per host fewer (issue 12: at most 25 per host in all workflows).
 */
export function reprovisionHostWorkflowV2(input: ReprovisionHostInput): Promise<ReprovisionHostResult> {
  return reprovisionHost(input, true);
}

async function reprovisionHost(input: ReprovisionHostInput, v2: boolean): Promise<ReprovisionHostResult> {
  const isPatched = v2 ? () => true : patched;
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
  const progress: HostRun['progress'] = { events: [], current: { stage: 1, step: 'pre-shutdown' } };
  setHandler(bootEventSignal, (event) => void progress.events.push(event));
  setHandler(bootEventsSignal, (batch) => takeBootBatch(progress, batch));
  const boot: HostRun['boot'] = { attempt: 1, retried: [] };
  setHandler(hostStatusQuery, () => ({
    step: progress.current.step,
    stage: progress.current.stage,
    events: progress.events,
    ...(boot.retried.length > 0 ? { bootRetries: boot.retried } : {}),
  }));

  // A run with the newer marker has the older one's behaviour too, without a second marker event.
  const batched = isPatched(BATCHED);
  const folded = batched || isPatched(FOLDED_STEPS);
  const spec = { commit: input.commit, site: input.site, host: input.host };
  // Given at start (startHostWorkflows): no marker. The input is in the history, so a replay takes
  // the same branch as the run did; earlier runs, started without it, load it as they did.
  const target = input.spec ?? (folded ? await local.loadHostSpec(spec) : await loadHostSpec(spec));
  // Set by the parent at start when it knew the group: an upsert would be one more event.
  if (!(v2 && workflowInfo().typedSearchAttributes.get(HostGroupAttribute) === target.group))
    upsertSearchAttributes([{ key: HostGroupAttribute, value: target.group }]);
  if (target.never_provision) {
    return { host: target.host, ok: true, skipped: true, jobs: [] };
  }
  const workflowId = workflowInfo().workflowId;
  const run: HostRun = {
    input,
    target,
    timeouts,
    agent,
    agentOptions,
    jobs,
    jobOptions,
    workflowId,
    progress,
    outcomes: [],
    mark: 0,
    folded,
    batched,
    patched: isPatched,
    watchdog: new BootWatchdog(),
    boot,
  };
  const start = input.resumeFrom
    ? { ...input.resumeFrom, step: resumeStep(input.resumeFrom.step) }
    : progress.current;
  try {
    for (const stage of target.stages) {
      if (stage.stage < start.stage) continue;
      run.mark = progress.events.length;
      run.after = undefined;
      const first = stage.stage === start.stage ? HOST_STEPS.indexOf(start.step) : 0;
      await runStageSteps(run, stage, HOST_STEPS, first, (step) => runStep(run, stage, step));
    }
  } catch (err) {
    return hostFailed(run, err);
  }
  const retried = run.boot.retried.length > 0 ? { bootRetries: run.boot.retried } : {};
  return { host: target.host, ok: true, jobs: run.outcomes, skipped: false, ...retried };
}
