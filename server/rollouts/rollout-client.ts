// The Temporal side of `vaquero rollout`: connect, find a rollout by id or site, ask it its status,
// and turn Temporal's errors into one line an operator can act on.
import {
  Client,
  Connection,
  isGrpcDeadlineError,
  isGrpcServiceError,
  NamespaceNotFoundError,
  ServiceError,
  WorkflowNotFoundError,
  type WorkflowExecutionDescription,
  type WorkflowExecutionInfo,
  type WorkflowHandle,
} from '@temporalio/client';
import {
  hostWorkflowId,
  RolloutStatusSchema,
  type RolloutStatus,
  type StatusPage,
} from '../../schemas/rollout';
import { hostStatusQuery, statusQuery } from '../../workflows/messages';
import { RolloutClientError } from './errors';

export const ROLLOUT_WORKFLOW_TYPE = 'siteRolloutWorkflow';
/** Enough for a server across an ocean; an unreachable one should not hang the command for long. */
const CONNECT_TIMEOUT = '5 seconds';
const QUERY_TIMEOUT_MS = 10_000;
const STEP_QUERY_TIMEOUT_MS = 3_000;
const LIST_LIMIT = 200;

export interface Temporal {
  client: Client;
  address: string;
  namespace: string;
  close(): Promise<void>;
}

export interface Rollout {
  workflowId: string;
  handle: WorkflowHandle;
  description: WorkflowExecutionDescription;
}

export async function connectTemporal(address: string, namespace: string): Promise<Temporal> {
  let connection: Connection;
  try {
    connection = await Connection.connect({ address, connectTimeout: CONNECT_TIMEOUT });
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new RolloutClientError(`cannot reach the Temporal server at ${address}: ${reason}`, 1);
  }
  return {
    client: new Client({ connection, namespace }),
    address,
    namespace,
    close: () => connection.close(),
  };
}

function grpcDetails(err: unknown): string | undefined {
  if (isGrpcServiceError(err)) return err.details || err.message;
  return undefined;
}

/** A Temporal error as one line; errors that are not Temporal's are returned as they are. */
export function temporalError(err: unknown, t: Pick<Temporal, 'address' | 'namespace'>): unknown {
  if (err instanceof RolloutClientError) return err;
  if (err instanceof NamespaceNotFoundError)
    return new RolloutClientError(`namespace "${err.namespace}" does not exist at ${t.address}`, 1);
  if (err instanceof WorkflowNotFoundError)
    return new RolloutClientError(`no workflow "${err.workflowId}" in namespace ${t.namespace}`, 1);
  if (isGrpcDeadlineError(err) || isGrpcDeadlineError((err as Error | undefined)?.cause))
    return new RolloutClientError(`the Temporal server at ${t.address} did not answer in time`, 1);
  if (err instanceof ServiceError) {
    const details = grpcDetails(err.cause) ?? (err.cause instanceof Error ? err.cause.message : '');
    if (/invalid search attribute/i.test(details))
      return new RolloutClientError(
        `namespace ${t.namespace} lacks Vaquero's search attributes (${details}); see docs/operations/rollouts.md`,
        1,
      );
    return new RolloutClientError(`${err.message}: ${details || 'no details'}`, 1);
  }
  if (isGrpcServiceError(err))
    return new RolloutClientError(`Temporal at ${t.address}: ${grpcDetails(err)}`, 1);
  return err;
}

/** Site names go into a visibility query, so only DNS-label-like ones are accepted. */
export function checkSite(site: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(site))
    throw new RolloutClientError(`"${site}" is not a site name`, 2);
  return site;
}

export function rolloutQuery(options: { site?: string; all?: boolean }): string {
  const clauses = [`WorkflowType = '${ROLLOUT_WORKFLOW_TYPE}'`];
  if (options.site) clauses.push(`VaqueroSite = '${checkSite(options.site)}'`);
  if (!options.all) clauses.push(`ExecutionStatus = 'Running'`);
  return clauses.join(' AND ');
}

/** Rollouts newest first, at most LIST_LIMIT of them. */
export async function listRollouts(
  t: Temporal,
  options: { site?: string; all?: boolean },
): Promise<WorkflowExecutionInfo[]> {
  const found: WorkflowExecutionInfo[] = [];
  for await (const info of t.client.workflow.list({ query: rolloutQuery(options), pageSize: 100 })) {
    found.push(info);
    if (found.length >= LIST_LIMIT) break;
  }
  return found.sort((a, b) => b.startTime.getTime() - a.startTime.getTime());
}

/**
 * A workflow id (it has a "/": rollout/<site>/<sha7>) or a site name, which stands for the site's
 * newest running rollout.
 */
export async function findRollout(t: Temporal, idOrSite: string): Promise<Rollout> {
  let workflowId = idOrSite;
  if (!idOrSite.includes('/')) {
    const [newest] = await listRollouts(t, { site: idOrSite });
    if (!newest)
      throw new RolloutClientError(
        `no running rollout for site ${idOrSite} in namespace ${t.namespace} (all of them: vaquero rollout list --site ${idOrSite} --all)`,
        1,
      );
    workflowId = newest.workflowId;
  }
  const handle = t.client.workflow.getHandle(workflowId);
  const description = await handle.describe();
  if (description.type !== ROLLOUT_WORKFLOW_TYPE)
    throw new RolloutClientError(
      `${workflowId} is a ${description.type}, not a rollout (rollout/<site>/<sha7>)`,
      1,
    );
  return { workflowId, handle, description };
}

/** The rollout's counts and one page of its hosts (default: the first DEFAULT_STATUS_HOSTS). */
export async function queryStatus(
  t: Temporal,
  handle: WorkflowHandle,
  timeoutMs = QUERY_TIMEOUT_MS,
  page?: StatusPage,
) {
  const raw = await t.client.connection.withDeadline(Date.now() + timeoutMs, () =>
    page ? handle.query(statusQuery, page) : handle.query(statusQuery),
  );
  const parsed = RolloutStatusSchema.safeParse(raw);
  if (!parsed.success)
    throw new RolloutClientError(`${handle.workflowId} answered the status query with an unknown shape`, 1);
  return parsed.data;
}

/** Hosts asked per query when every host is wanted: a query answer stays far below gRPC's 4 MB. */
const ALL_HOSTS_PAGE = 5_000;

/** The status with every host, read page by page (a 50,000-host rollout answers in ten queries). */
export async function queryAllHosts(t: Temporal, handle: WorkflowHandle): Promise<RolloutStatus> {
  const first = await queryStatus(t, handle, QUERY_TIMEOUT_MS, { limit: ALL_HOSTS_PAGE });
  // Rollouts of older releases answer with every host and no page.
  for (let offset = ALL_HOSTS_PAGE; first.page && offset < first.page.total; offset += ALL_HOSTS_PAGE) {
    const next = await queryStatus(t, handle, QUERY_TIMEOUT_MS, { offset, limit: ALL_HOSTS_PAGE });
    for (const [name, h] of Object.entries(next.hosts))
      Object.defineProperty(first.hosts, name, {
        value: h,
        enumerable: true,
        writable: true,
        configurable: true,
      });
  }
  return first;
}

/** "stage 1 dhcp" for each running host, from its own workflow; a host that does not answer has none. */
export async function runningSteps(t: Temporal, status: RolloutStatus): Promise<Map<string, string>> {
  const steps = new Map<string, string>();
  const running = Object.entries(status.hosts).filter(([, h]) => h.state === 'running' && !h.step);
  await Promise.all(
    running.map(async ([name, h]) => {
      const handle = t.client.workflow.getHandle(hostWorkflowId(status.site, name, status.commit, h.attempt));
      try {
        const host = await t.client.connection.withDeadline(Date.now() + STEP_QUERY_TIMEOUT_MS, () =>
          handle.query(hostStatusQuery),
        );
        steps.set(name, `stage ${host.stage} ${host.step}`);
      } catch {
        // A host workflow between tasks or just closed: its row goes without a step this time.
      }
    }),
  );
  return steps;
}
