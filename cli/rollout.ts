import type { WorkflowExecutionInfo } from '@temporalio/client';
import type { CliConfig } from '../schemas/cli-config';
import { resultCounts, type RolloutStatus, type SiteRolloutResult } from '../schemas/rollout';
import { CommitAttribute, PhaseAttribute, SiteAttribute } from '../schemas/search-attributes';
import { CliError, parse, type Io } from './io';
import {
  connectTemporal,
  findRollout,
  listRollouts,
  queryStatus,
  runningSteps,
  temporalError,
  type Rollout,
  type Temporal,
} from '../server/rollouts/rollout-client';
import {
  runRolloutCommand,
  type RolloutCommandInputs,
  type RolloutCommandName,
} from '../server/rollouts/commands';
import { StatusPageQuerySchema } from '../schemas/api';
import { listText, resultLine, statusText, summaryLine, timestamp, type RolloutRow } from './rollout-format';
import { parseInterval, watchRollout } from './rollout-watch';
import { watchAllRollouts } from './rollout-watch-all';
import { own } from '../schemas/common';

const USAGE = `usage: vaquero rollout <subcommand> [--address host:port] [--namespace ns]

subcommands:
  list [--site S] [--all] [--json]    running rollouts (--all: closed ones too), newest first
  status <site|id> [--json]           phase, why it waits, wave, counts, and the hosts not pending
    [--state S] [--offset N] [--limit N]  a page of hosts (default: the first 1000), e.g. --state failed
  watch <site|id> [--interval 1s]     the status until the rollout closes; exit 0 if it completed, else 1
  watch [--interval 1s]               every running rollout, and those that start later, until Ctrl-C
  pause <site|id>                     start no more hosts; hosts in flight finish
  resume <site|id>                    start hosts again
  approve <site|id>                   go on after the canary (site policy approval_required)
  abort <site|id> [--reason R]        stop: hosts in flight cancel at a safe point, no more start
  retry-host <site|id> <host>         reprovision a failed host again, from the step where it failed

A site stands for its newest running rollout; an id is rollout/<site>/<sha7>.
--address defaults to $TEMPORAL_ADDRESS or 127.0.0.1:7233, --namespace to $TEMPORAL_NAMESPACE or default.
Commands are Workflow Updates: a refusal (wrong state, closed rollout) prints its reason and exits 1.
The temporal CLI sends the same updates, signals and query: see docs/operations/rollouts.md.
`;

const STOP_SIGNALS = ['SIGINT', 'SIGTERM'] as const;
const CONNECTION = { address: { type: 'string' }, namespace: { type: 'string' } } as const;
/** Rows of `list` wait this long for each rollout's status before showing its last known phase. */
const LIST_QUERY_TIMEOUT_MS = 5_000;

type Subcommand = (args: string[], io: Io, config: CliConfig) => Promise<number>;

async function withTemporal<T>(
  values: { address?: string; namespace?: string },
  config: CliConfig,
  fn: (t: Temporal) => Promise<T>,
): Promise<T> {
  const t = await connectTemporal(
    values.address ?? config.temporalAddress,
    values.namespace ?? config.temporalNamespace,
  );
  try {
    return await fn(t);
  } catch (err) {
    throw temporalError(err, t);
  } finally {
    await t.close();
  }
}

async function rowOf(t: Temporal, info: WorkflowExecutionInfo): Promise<RolloutRow> {
  const attrs = info.typedSearchAttributes;
  const row: RolloutRow = {
    workflowId: info.workflowId,
    site: attrs.get(SiteAttribute) ?? info.workflowId.split('/')[1] ?? '?',
    commit: attrs.get(CommitAttribute) ?? '',
    phase: attrs.get(PhaseAttribute) ?? '?',
    execution: info.status.name,
    startTime: info.startTime,
    closeTime: info.closeTime,
  };
  const handle = t.client.workflow.getHandle(info.workflowId, info.runId);
  try {
    if (info.status.name === 'RUNNING') {
      const status = await queryStatus(t, handle, LIST_QUERY_TIMEOUT_MS);
      return { ...row, phase: status.phase, counts: status.counts };
    }
    if (info.status.name !== 'COMPLETED') return { ...row, phase: info.status.name.toLowerCase() };
    const result = (await handle.result()) as SiteRolloutResult;
    const { succeeded, failed, remaining } = resultCounts(result);
    const counts = {
      total: succeeded + failed + remaining,
      succeeded,
      failed,
      pending: remaining,
      running: 0,
    };
    return { ...row, phase: result.phase, counts };
  } catch {
    // A rollout that does not answer (no worker) still gets its row, with its last known phase.
    return row;
  }
}

const list: Subcommand = async (args, io, config) => {
  const { values, positionals } = parse(args, {
    ...CONNECTION,
    site: { type: 'string' },
    all: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  });
  if (positionals.length > 0) throw new CliError('usage: vaquero rollout list [--site S] [--all] [--json]');
  return withTemporal(values, config, async (t) => {
    const infos = await listRollouts(t, { site: values.site, all: values.all });
    const rows = await Promise.all(infos.map((info) => rowOf(t, info)));
    if (values.json) io.out(`${JSON.stringify(rows, null, 2)}\n`);
    else if (rows.length > 0) io.out(listText(rows, new Date()));
    else {
      const which = `${values.all ? '' : 'running '}rollouts${values.site ? ` of site ${values.site}` : ''}`;
      io.out(`no ${which} in namespace ${t.namespace}\n`);
    }
    return 0;
  });
};

/**
 * A closed rollout answers the status query only through a worker that replays it; without one,
 * its result still says how it ended.
 */
async function closedSummary(t: Temporal, rollout: Rollout, queryError: unknown): Promise<string> {
  const { description } = rollout;
  const execution = description.status.name;
  const converted = temporalError(queryError, t);
  const why = converted instanceof Error ? converted.message : String(converted);
  if (execution !== 'COMPLETED')
    throw new CliError(`${rollout.workflowId} is closed (${execution.toLowerCase()}); its status: ${why}`, 1);
  const result = (await rollout.handle.result()) as SiteRolloutResult;
  const closed = description.closeTime ? ` at ${timestamp(description.closeTime)}` : '';
  return `${resultLine(rollout.workflowId, result)}\n  closed${closed}; no per-host detail: ${why}\n`;
}

const status: Subcommand = async (args, io, config) => {
  const { values, positionals } = parse(args, {
    ...CONNECTION,
    json: { type: 'boolean', default: false },
    state: { type: 'string' },
    offset: { type: 'string' },
    limit: { type: 'string' },
  });
  const [target] = positionals;
  if (!target || positionals.length > 1)
    throw new CliError(
      'usage: vaquero rollout status <site|workflow-id> [--json] [--state <state>] [--offset N] [--limit N]',
    );
  const page = StatusPageQuerySchema.safeParse({
    state: values.state,
    offset: values.offset,
    limit: values.limit,
  });
  if (!page.success)
    throw new CliError(
      `rollout status: ${page.error.issues.map((i) => `--${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  return withTemporal(values, config, async (t) => {
    const rollout = await findRollout(t, target);
    const { description } = rollout;
    const execution = description.status.name;
    let rolloutStatus: RolloutStatus;
    try {
      rolloutStatus = await queryStatus(t, rollout.handle, undefined, page.data);
    } catch (err) {
      if (execution === 'RUNNING' || values.json) throw err;
      io.out(await closedSummary(t, rollout, err));
      return 0;
    }
    if (values.json) {
      const { workflowId, runId, startTime, closeTime } = description;
      const json = { workflowId, runId, execution, startTime, closeTime, ...rolloutStatus };
      io.out(`${JSON.stringify(json, null, 2)}\n`);
      return 0;
    }
    const steps = execution === 'RUNNING' ? await runningSteps(t, rolloutStatus) : new Map<string, string>();
    const view = { workflowId: rollout.workflowId, execution, status: rolloutStatus, steps };
    io.out(
      statusText({ ...view, startTime: description.startTime, closeTime: description.closeTime }, new Date()),
    );
    return 0;
  });
};

/**
 * Sends the command as an Update: the rollout's new state on stdout, or its refusal (wrong state,
 * closed) as one line and exit 1.
 */
async function command<N extends RolloutCommandName>(
  io: Io,
  t: Temporal,
  target: string,
  name: N,
  input: RolloutCommandInputs[N],
): Promise<number> {
  const rollout = await findRollout(t, target);
  const outcome = await runRolloutCommand(t, rollout, name, input);
  io.out(`${rollout.workflowId}: ${name} done; now ${summaryLine(outcome)}\n`);
  return 0;
}

function plainCommand(name: 'pause' | 'resume' | 'approve'): Subcommand {
  return async (args, io, config) => {
    const { values, positionals } = parse(args, CONNECTION);
    const [target] = positionals;
    if (!target || positionals.length > 1)
      throw new CliError(`usage: vaquero rollout ${name} <site|workflow-id>`);
    return withTemporal(values, config, (t) => command(io, t, target, name, {}));
  };
}

const abort: Subcommand = async (args, io, config) => {
  const { values, positionals } = parse(args, { ...CONNECTION, reason: { type: 'string' } });
  const [target] = positionals;
  if (!target || positionals.length > 1)
    throw new CliError('usage: vaquero rollout abort <site|workflow-id> [--reason R]');
  return withTemporal(values, config, (t) => command(io, t, target, 'abort', { reason: values.reason }));
};

const retryHost: Subcommand = async (args, io, config) => {
  const { values, positionals } = parse(args, CONNECTION);
  const [target, host] = positionals;
  if (!target || !host || positionals.length > 2)
    throw new CliError('usage: vaquero rollout retry-host <site|workflow-id> <host>');
  return withTemporal(values, config, (t) => command(io, t, target, 'retry-host', { host }));
};

/** Until SIGINT or SIGTERM: watching every rollout has no end of its own. */
async function untilInterrupted(fn: (stop: AbortSignal) => Promise<number>): Promise<number> {
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  for (const s of STOP_SIGNALS) process.once(s, onSignal);
  try {
    return await fn(stop.signal);
  } finally {
    for (const s of STOP_SIGNALS) process.off(s, onSignal);
  }
}

const watch: Subcommand = async (args, io, config) => {
  const { values, positionals } = parse(args, { ...CONNECTION, interval: { type: 'string', default: '1s' } });
  const [target] = positionals;
  if (positionals.length > 1)
    throw new CliError('usage: vaquero rollout watch [<site|workflow-id>] [--interval 1s]');
  const intervalMs = parseInterval(values.interval);
  if (intervalMs === undefined)
    throw new CliError(`--interval ${values.interval}: give a duration like 500ms, 2s or 1m (100ms or more)`);
  if (!target)
    return untilInterrupted((stop) =>
      withTemporal(values, config, (t) => watchAllRollouts(t, io, { intervalMs, tty: config.tty, stop })),
    );
  return withTemporal(values, config, async (t) =>
    watchRollout(t, await findRollout(t, target), io, { intervalMs, tty: config.tty }),
  );
};

const subcommands: Record<string, Subcommand> = {
  list,
  status,
  watch,
  pause: plainCommand('pause'),
  resume: plainCommand('resume'),
  approve: plainCommand('approve'),
  abort,
  'retry-host': retryHost,
};

export async function rolloutCommand(args: string[], io: Io, config: CliConfig): Promise<number> {
  const [name, ...rest] = args;
  if (name === '--help' || name === '-h' || name === 'help') {
    io.out(USAGE);
    return 0;
  }
  const subcommand = name ? own(subcommands, name) : undefined;
  if (!subcommand) {
    io.err(`${name ? `vaquero rollout: unknown subcommand "${name}"\n` : ''}${USAGE}`);
    return 2;
  }
  return subcommand(rest, io, config);
}
