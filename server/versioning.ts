// The server worker's deployment version at Temporal: registered by polling, made current only on a
// first install, when the current version has no worker left, or when the operator asks
// (`--make-current`). Otherwise the operator switches with `temporal worker deployment
// set-current-version` (docs/operations/upgrades.md).
import { setTimeout as delay } from 'node:timers/promises';
import type { Client } from '@temporalio/client';
import proto from '@temporalio/proto';
import type { DeploymentVersion } from '../activities/build-id';
import type { Log } from './http/log';
import { SERVER_TASK_QUEUE } from '../schemas/rollout';

export interface VersionRegistration {
  /** The current version after the call (this one when `promoted` or already current). */
  current?: DeploymentVersion;
  promoted: boolean;
  /** Why this version is or is not current, in a person's words (logged at start). */
  reason: string;
}

/** gRPC's NOT_FOUND: no such deployment, or no such version yet. */
const isNotFound = (err: unknown) => (err as { code?: number }).code === 5;

/** The deployment's current version; undefined while there is none (or only unversioned workers). */
export async function currentVersion(
  client: Client,
  deploymentName: string,
): Promise<DeploymentVersion | undefined> {
  try {
    const { workerDeploymentInfo } = await client.workflowService.describeWorkerDeployment({
      namespace: client.options.namespace,
      deploymentName,
    });
    const v = workerDeploymentInfo?.routingConfig?.currentDeploymentVersion;
    return v?.buildId && v.deploymentName
      ? { deploymentName: v.deploymentName, buildId: v.buildId }
      : undefined;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** Waits until Temporal knows the version (its worker has polled once). */
async function registered(client: Client, version: DeploymentVersion, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      await client.workflowService.describeWorkerDeploymentVersion({
        namespace: client.options.namespace,
        deploymentVersion: version,
      });
      return;
    } catch (err) {
      if (!isNotFound(err)) throw err;
      if (Date.now() > until)
        throw new Error(
          `Temporal did not register worker deployment version ${version.deploymentName}/${version.buildId} within ${timeoutMs} ms`,
          { cause: err },
        );
      await delay(250);
    }
  }
}

/** Whether any worker of `version` polls the server's task queue (Temporal keeps pollers ~5 minutes). */
async function polled(client: Client, version: DeploymentVersion): Promise<boolean> {
  const { pollers } = await client.workflowService.describeTaskQueue({
    namespace: client.options.namespace,
    taskQueue: {
      name: SERVER_TASK_QUEUE,
      kind: proto.temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL,
    },
    taskQueueType: proto.temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
  });
  return pollers.some(
    (p) =>
      p.deploymentOptions?.deploymentName === version.deploymentName &&
      p.deploymentOptions.buildId === version.buildId,
  );
}

/** The `temporal` command an operator runs to make `version` current. */
export function setCurrentCommand(version: DeploymentVersion, namespace: string): string {
  return `temporal worker deployment set-current-version --namespace ${namespace} --deployment-name ${version.deploymentName} --build-id '${version.buildId}' --yes`;
}

/**
 * Called once the worker of `version` runs: waits for Temporal to register it, then makes it current
 * when nothing else can serve the deployment's workflows, or when `makeCurrent`.
 */
export async function registerVersion(
  client: Client,
  version: DeploymentVersion,
  options: { makeCurrent: boolean; timeoutMs?: number },
): Promise<VersionRegistration> {
  await registered(client, version, options.timeoutMs ?? 30_000);
  const current = await currentVersion(client, version.deploymentName);
  if (current?.buildId === version.buildId) return { current, promoted: false, reason: 'already current' };
  let reason: string;
  if (options.makeCurrent) reason = 'made current (--make-current)';
  else if (!current) reason = 'made current: the deployment had no current version';
  else if (!(await polled(client, current)))
    reason = `made current: no worker of the current version ${current.buildId} polls any more`;
  else
    return {
      current,
      promoted: false,
      reason: `registered; ${current.buildId} stays current until: ${setCurrentCommand(version, client.options.namespace)}`,
    };
  try {
    await client.workflowService.setWorkerDeploymentCurrentVersion({
      namespace: client.options.namespace,
      deploymentName: version.deploymentName,
      buildId: version.buildId,
      identity: `vaquero-server ${version.buildId}`,
    });
  } catch (err) {
    // Two servers of one version starting together (HA): the other one's call won.
    if ((await currentVersion(client, version.deploymentName))?.buildId !== version.buildId) throw err;
  }
  return { current: version, promoted: true, reason };
}

/**
 * Registers the version, then, while another version is current, asks again every `everyMs`: once no
 * worker of that version polls (it was stopped, not upgraded beside this one), this one takes over.
 */
export async function watchVersion(
  client: Client,
  version: DeploymentVersion,
  makeCurrent: boolean,
  log: Pick<Log, 'info' | 'warn'>,
  everyMs = 30_000,
): Promise<{ stop(): Promise<void> }> {
  const report = (r: VersionRegistration) =>
    log.info({ ...version, current: r.current?.buildId }, `worker version ${r.reason}`);
  const first = await registerVersion(client, version, { makeCurrent });
  report(first);
  if (first.current?.buildId === version.buildId) return { stop: () => Promise.resolve() };
  const stopped = new AbortController();
  const loop = (async () => {
    while (!stopped.signal.aborted) {
      await delay(everyMs, undefined, { signal: stopped.signal }).catch(() => undefined);
      if (stopped.signal.aborted) return;
      try {
        const r = await registerVersion(client, version, { makeCurrent: false });
        if (r.promoted) report(r);
        if (r.current?.buildId === version.buildId) return;
      } catch (err) {
        log.warn({ error: (err as Error).message }, 'worker version check failed');
      }
    }
  })();
  return {
    async stop() {
      stopped.abort();
      await loop;
    },
  };
}
