// One measured rollout of N sim hosts (scripts/bench/rollout.ts): the `vaquero-server` worker in
// this process or in `servers` real `vaquero server` processes, the site's sim agent here.
import { mkdtemp, rm } from 'node:fs/promises';
import { hostname, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { applyWorkflowId, SERVER_TASK_QUEUE, type SiteRolloutResult } from '../../../schemas/rollout';
import type { ApplyCommitResult } from '../../../workflows/apply-commit';
import { writeSimSot } from '../../../test/helpers/sim-sot';
import { launchVaquero } from '../../../test/helpers/vaquero-env';
import { postgresCpuMs, temporalServerCpuMs } from './cpu';
import { readHistories, type HistoryFigures, type RunRef, type WorkerShare } from './histories';
import { startServerProcesses, type ServerProcess } from './server-processes';

export interface RunSpec {
  hosts: number;
  bootS: number;
  maxConcurrent: number;
}

export interface RunOptions {
  address: string;
  namespace: string;
  /** 0: the server worker runs in this process. */
  servers: number;
  /** The site rollout's continue-as-new threshold (default: the workflow's own). */
  historyLimit?: number;
}

export interface ProcessShare extends WorkerShare {
  name: string;
  pid: number;
  cpuMs: number;
  /** From its /metrics (server processes only). */
  activitiesCounted?: { completed: number; failed: number };
}

export interface RunFigures extends RunSpec {
  servers: number;
  phase: string;
  succeeded: number;
  failed: number;
  wallS: number;
  idealS: number;
  /** The 1-minute load average as the rollout started and as it ended: was the machine quiet? */
  load: [number, number];
  history: Omit<HistoryFigures, 'workers'>;
  /** CPU during the rollout, ms: this process, the server processes, Temporal, PostgreSQL. */
  cpuMs: { bench: number; servers: number; temporal: number | undefined; postgres: number };
  processes: ProcessShare[];
}

/** Which process each worker identity (`pid@host`) belongs to. */
function shares(
  workers: Record<string, WorkerShare>,
  bench: ProcessShare,
  servers: ProcessShare[],
): ProcessShare[] {
  const all = [bench, ...servers];
  const host = hostname();
  for (const [identity, w] of Object.entries(workers)) {
    const target = all.find((p) => identity === `${p.pid}@${host}`);
    if (!target) {
      all.push({ ...w, name: `other (${identity})`, pid: 0, cpuMs: 0 });
      continue;
    }
    target.workflowTasks += w.workflowTasks;
    target.localActivities += w.localActivities;
    for (const [q, n] of Object.entries(w.activities)) target.activities[q] = (target.activities[q] ?? 0) + n;
  }
  return all;
}

const emptyShare = (name: string, pid: number, cpuMs: number): ProcessShare => ({
  name,
  pid,
  cpuMs,
  workflowTasks: 0,
  activities: {},
  localActivities: 0,
});

export async function measureRollout(spec: RunSpec, options: RunOptions): Promise<RunFigures> {
  const { hosts, bootS, maxConcurrent } = spec;
  const work = await mkdtemp(path.join(tmpdir(), 'vaquero-bench-'));
  let servers: ServerProcess[] = [];
  await writeSimSot(work, { site: 'bench', hosts, bootS, maxConcurrent, net: 128 });
  const env = await launchVaquero({
    fixture: work,
    sites: ['bench'],
    simTimeScale: 1,
    namespace: options.namespace,
    address: options.address,
    serverWorker: options.servers === 0,
  });
  try {
    if (options.servers > 0) {
      // Outside the work directory, which is removed: a server's output outlives the run.
      const logs = await mkdtemp(path.join(tmpdir(), 'vaquero-bench-servers-'));
      console.error(`vaquero server processes: config and output in ${logs}`);
      servers = await startServerProcesses(logs, options.servers, options);
    }
    const sha = await env.commit('bench');
    const cpu0 = process.cpuUsage();
    const servers0 = servers.map((s) => s.cpuMs());
    const temporal0 = temporalServerCpuMs(options.address);
    const pg0 = postgresCpuMs();
    const load0 = loadavg()[0] ?? 0;
    const t0 = Date.now();
    const apply = await env.client.workflow.start('applyCommitWorkflow', {
      taskQueue: SERVER_TASK_QUEUE,
      workflowId: applyWorkflowId(sha),
      args: [
        {
          commit: sha,
          source: env.sot,
          timeouts: { dhcp: 120_000, ipxe: 120_000, kernel: 120_000, checkpoint: 300_000 },
          ...(options.historyLimit ? { rolloutHistoryLimit: options.historyLimit } : {}),
        },
      ],
    });
    const { rollouts } = (await apply.result()) as ApplyCommitResult;
    // The handle follows the rollout's runs to the last one.
    const rolloutId = rollouts[0]?.workflowId ?? '';
    const result = (await env.client.workflow.getHandle(rolloutId).result()) as SiteRolloutResult;
    const wallS = (Date.now() - t0) / 1000;
    const loadAvgEnd = loadavg()[0] ?? 0;
    const benchCpu = process.cpuUsage(cpu0);
    const serverShares = await Promise.all(
      servers.map(async (s, i) => ({
        ...emptyShare(s.name, s.pid, s.cpuMs() - (servers0[i] ?? 0)),
        activitiesCounted: await s.activities(),
      })),
    );
    const temporal1 = temporalServerCpuMs(options.address);
    const cpuMs = {
      bench: (benchCpu.user + benchCpu.system) / 1000,
      servers: serverShares.reduce((sum, s) => sum + s.cpuMs, 0),
      temporal: temporal0 !== undefined && temporal1 !== undefined ? temporal1 - temporal0 : undefined,
      postgres: postgresCpuMs() - pg0,
    };
    const role = options.servers > 0 ? 'sim agent' : 'server worker + sim agent';
    const bench = emptyShare(`bench (${role})`, process.pid, cpuMs.bench);
    // Hosts started by the rollout's activity (issue 12) are found by their search attributes.
    const hostRuns: RunRef[] = [];
    const query = `VaqueroSite = "bench" AND VaqueroCommit = ${JSON.stringify(sha)}`;
    for await (const info of env.client.workflow.list({ query }))
      if (info.workflowId.startsWith('host/'))
        hostRuns.push({ workflowId: info.workflowId, runId: info.runId });
    const { workers, ...history } = await readHistories(
      env.client,
      { workflowId: apply.workflowId, runId: apply.firstExecutionRunId },
      16,
      hostRuns,
    );
    return {
      ...spec,
      servers: options.servers,
      phase: result.phase,
      succeeded: result.counts?.succeeded ?? result.succeeded?.length ?? 0,
      failed: result.counts?.failed ?? result.failed.length,
      wallS,
      idealS: Math.ceil(hosts / maxConcurrent) * bootS,
      load: [load0, loadAvgEnd],
      history,
      cpuMs,
      processes: shares(workers, bench, serverShares),
    };
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    await env.close();
    await rm(work, { recursive: true, force: true });
  }
}
