import { setTimeout as delay } from 'node:timers/promises';
import { CancelledFailure, Context } from '@temporalio/activity';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import {
  hostWorkflowId,
  rolloutWorkflowId,
  SERVER_TASK_QUEUE,
  type ClosedHost,
  type HostSpec,
  type HostStartRequest,
  type ReprovisionHostInput,
  type StartHostsInput,
  type StartedHost,
} from '../schemas/rollout';
import { CommitAttribute, HostGroupAttribute, SiteAttribute } from '../schemas/search-attributes';
import { closedOnce, closedSince, inChunks, outcomeOf, SWEEP_EVERY } from './host-results';

async function startOne(
  client: Client,
  input: StartHostsInput,
  req: HostStartRequest,
  spec: HostSpec | undefined,
): Promise<StartedHost> {
  const { site, commit } = input;
  const workflowId = hostWorkflowId(site, req.host, commit, req.attempt);
  const args: ReprovisionHostInput = {
    site,
    host: req.host,
    commit,
    attempt: req.attempt,
    ...(req.resumeFrom ? { resumeFrom: req.resumeFrom } : {}),
    ...(input.timeouts ? { timeouts: input.timeouts } : {}),
    ...(spec ? { spec } : {}),
  };
  try {
    await client.workflow.start('reprovisionHostWorkflowV2', {
      taskQueue: SERVER_TASK_QUEUE,
      workflowId,
      args: [args],
      // A retried batch finds the hosts it already started: they are this rollout's, not a conflict.
      workflowIdConflictPolicy: 'USE_EXISTING',
      typedSearchAttributes: [
        { key: SiteAttribute, value: site },
        { key: CommitAttribute, value: commit },
        { key: HostGroupAttribute, value: req.group },
      ],
      staticSummary: `reprovision ${site}/${req.host} (${req.group}) for ${commit.slice(0, 7)}`,
      staticDetails: `Why: ${req.reasons.join(', ')}\nRollout: ${rolloutWorkflowId(site, commit)}`,
    });
    return { host: req.host, workflowId };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return { host: req.host, workflowId };
    return { host: req.host, workflowId, error: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * Starts a rollout's host workflows, a batch per call, instead of one child each: the rollout's
 * history holds one activity per batch, not three child events and their workflow tasks per host,
 * and a host outlives a continue-as-new of its rollout with nothing to wait for (issue 12). Each
 * host's spec goes in its input (read from the revision once per batch). The hosts carry the site and commit as search attributes: followHosts and the orphan sweep find them.
 */
export async function startHostWorkflows(
  client: Client,
  input: StartHostsInput,
  /** The hosts' specs, passed in their inputs (none: each workflow loads its own). */
  specs?: (hosts: string[]) => Promise<Map<string, HostSpec>>,
): Promise<StartedHost[]> {
  const ctx = Context.current();
  const known = (await specs?.(input.hosts.map((h) => h.host))) ?? new Map<string, HostSpec>();
  return inChunks(input.hosts, async (req) => {
    const started = await startOne(client, input, req, known.get(req.host));
    ctx.heartbeat();
    return started;
  });
}

export interface FollowHostsInput {
  site: string;
  commit: string;
  /** The rollout's workflow id: hosts it started as children (older runs) are found by parent too. */
  rollout: string;
  workflowIds: string[];
  /** The previous call's `asOf`: hosts closed since (less a margin) are looked for. */
  since: string;
  /** Returns with nothing closed after this long, so that hosts started meanwhile are followed too. */
  maxWaitMs?: number;
  pollMs?: number;
  /** Describe each id on the first poll (the caller asks every so many calls: visibility may miss one). */
  sweep?: boolean;
}

export interface FollowedHosts {
  closed: ClosedHost[];
  /** The latest close the call saw (Temporal's clock), or the call's own `since`: the next call's. */
  asOf: string;
}

/** A rollout's hosts: started by activity (site and commit), or as its children by older runs. */
const ours = (input: FollowHostsInput) =>
  `((${SiteAttribute.name} = ${JSON.stringify(input.site)} AND ${CommitAttribute.name} = ${JSON.stringify(input.commit)})` +
  ` OR ParentWorkflowId = ${JSON.stringify(input.rollout)})`;

/**
 * Waits until at least one of the given host workflows has closed (or maxWaitMs has passed) and
 * says how each closed one ended: one visibility query per poll for all of them, whichever run of
 * the rollout started them; every SWEEP_EVERY polls each is described instead.
 */
export async function followHosts(client: Client, input: FollowHostsInput): Promise<FollowedHosts> {
  const ctx = Context.current();
  const ids = new Set(input.workflowIds);
  const pollMs = input.pollMs ?? 2_000;
  const deadline = Date.now() + (input.maxWaitMs ?? 30_000);
  // The next call's `since`: the latest close seen, by Temporal's clock (closedSince), else unchanged.
  let asOf = input.since;
  for (let poll = 0; ; poll++) {
    const sweep = (poll === 0 && input.sweep) || poll % SWEEP_EVERY === SWEEP_EVERY - 1;
    // A server without list queries (the time-skipping test server) is asked host by host instead.
    const found = sweep
      ? { closed: await closedOnce(client, input.workflowIds) }
      : await closedSince(client, ours(input), ids, input.since).catch(async () => ({
          closed: await closedOnce(client, input.workflowIds),
        }));
    const { closed } = found;
    if ('latest' in found && found.latest !== undefined && found.latest > asOf) asOf = found.latest;
    if (closed.length > 0 || Date.now() >= deadline) {
      const outcomes = await Promise.all(closed.map((c) => outcomeOf(client, c.workflowId, c.status)));
      return { closed: outcomes, asOf };
    }
    ctx.heartbeat();
    await delay(pollMs, undefined, { signal: ctx.cancellationSignal }).catch(() => {
      throw new CancelledFailure('cancelled while following host workflows');
    });
  }
}

/** Cancels host workflows (they disarm their hosts); one already closed is no error. */
export async function cancelHostWorkflows(client: Client, input: { workflowIds: string[] }): Promise<void> {
  await inChunks(input.workflowIds, (id) =>
    client.workflow
      .getHandle(id)
      .cancel()
      .catch(() => undefined),
  );
}
