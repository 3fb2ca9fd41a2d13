// Scale benchmark of the rollout workflows (not a test): N sim hosts with a real boot delay, one
// host group with max_concurrent M, on a Temporal server: the dev server, or temporal-server on
// PostgreSQL (scripts/temporal-pg.sh) with --address. Prints wall time against the ideal
// ceil(N/M) * boot, history events per host, and CPU per host of this process (server worker and
// sim agent), of the Temporal server process and of PostgreSQL's processes.
//
//   npx tsx scripts/bench/rollout.ts [--hosts 1000] [--boot 30] [--max-concurrent 100] [--address host:port]
//     [--namespace vaquero-bench]
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { applyWorkflowId, SERVER_TASK_QUEUE, type SiteRolloutResult } from '../../schemas/rollout';
import type { ApplyCommitResult } from '../../workflows/apply-commit';
import { writeSimSot } from '../../test/helpers/sim-sot';
import { launchVaquero } from '../../test/helpers/vaquero-env';

const { values } = parseArgs({
  options: {
    hosts: { type: 'string', default: '1000' },
    boot: { type: 'string', default: '30' },
    'max-concurrent': { type: 'string', default: '100' },
    address: { type: 'string', default: process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233' },
    // Its own namespace lets two runs share a server: each terminates what runs in its namespace.
    namespace: { type: 'string', default: 'vaquero-bench' },
  },
});
const address = values.address;
const hosts = Number(values.hosts);
const bootS = Number(values.boot);
const maxConcurrent = Number(values['max-concurrent']);

const ticksPerS = Number(execFileSync('getconf', ['CLK_TCK']).toString());

/** User + system CPU of a process so far, in ms (fields 14 and 15 of /proc/<pid>/stat). */
function cpuMsOf(pid: string): number {
  const fields = (readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1] ?? '').split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerS;
}

/** The Temporal server listening on the frontend port (dev server or temporal-server). */
function temporalServerCpuMs(): number | undefined {
  try {
    const port = address.split(':').pop();
    const line = execFileSync('ss', ['-ltnpH', `sport = :${port}`]).toString();
    const pid = /pid=(\d+)/.exec(line)?.[1];
    return pid ? cpuMsOf(pid) : undefined;
  } catch {
    return undefined;
  }
}

/** PostgreSQL's processes (pooled connections stay, so their CPU is still counted at the end). */
function postgresCpuMs(): number {
  let pids: string[] = [];
  try {
    pids = execFileSync('pgrep', ['-x', 'postgres']).toString().split('\n').filter(Boolean);
  } catch {
    return 0;
  }
  return pids.reduce((sum, pid) => {
    try {
      return sum + cpuMsOf(pid);
    } catch {
      return sum;
    }
  }, 0);
}

const work = await mkdtemp(path.join(tmpdir(), 'vaquero-bench-'));
await writeSimSot(work, { site: 'bench', hosts, bootS, maxConcurrent, net: 128 });
const env = await launchVaquero({
  fixture: work,
  sites: ['bench'],
  simTimeScale: 1,
  namespace: values.namespace,
  address,
});
try {
  const sha = await env.commit('bench');
  const cpu0 = process.cpuUsage();
  const server0 = temporalServerCpuMs();
  const pg0 = postgresCpuMs();
  const t0 = Date.now();
  const apply = await env.client.workflow.start('applyCommitWorkflow', {
    taskQueue: SERVER_TASK_QUEUE,
    workflowId: applyWorkflowId(sha),
    args: [
      {
        commit: sha,
        source: env.sot,
        timeouts: { dhcp: 120_000, ipxe: 120_000, kernel: 120_000, checkpoint: 300_000 },
      },
    ],
  });
  const { rollouts } = (await apply.result()) as ApplyCommitResult;
  const rolloutId = rollouts[0]?.workflowId ?? '';
  const result = (await env.client.workflow.getHandle(rolloutId).result()) as SiteRolloutResult;
  const wallS = (Date.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const server1 = temporalServerCpuMs();
  const pgMs = postgresCpuMs() - pg0;
  const idealS = Math.ceil(hosts / maxConcurrent) * bootS;

  const events = async (id: string) =>
    (await env.client.workflow.getHandle(id).fetchHistory()).events?.length ?? 0;
  const sample = result.succeeded.slice(0, 50);
  let hostEvents = 0;
  for (const h of sample) hostEvents += await events(`host/bench/${h}/${sha.slice(0, 7)}`);
  const perHost = hostEvents / Math.max(1, sample.length);
  const rolloutEvents = await events(rolloutId);
  const applyEvents = await events(applyWorkflowId(sha));
  const total = perHost * hosts + rolloutEvents + applyEvents;
  const ms = (n: number) => `${n.toFixed(1)} ms`;
  const report = [
    `hosts ${hosts}, boot ${bootS} s, max_concurrent ${maxConcurrent}: ${result.phase}, ${result.succeeded.length} succeeded, ${result.failed.length} failed`,
    `wall time ${wallS.toFixed(1)} s vs ideal ceil(N/M) * boot = ${idealS} s: ratio ${(wallS / idealS).toFixed(3)}, overhead ${(wallS - idealS).toFixed(1)} s`,
    `history events: ${perHost.toFixed(1)} per host workflow (mean of ${sample.length}), rollout ${rolloutEvents}, apply ${applyEvents}; ${(total / hosts).toFixed(1)} per host in all`,
    `CPU of this process (server worker + sim agent): ${ms((cpu.user + cpu.system) / 1000 / hosts)} per host (${((cpu.user + cpu.system) / 1e6).toFixed(1)} s)`,
    server0 !== undefined && server1 !== undefined
      ? `CPU of the Temporal server at ${address}: ${ms((server1 - server0) / hosts)} per host (${((server1 - server0) / 1000).toFixed(1)} s)`
      : `CPU of the Temporal server at ${address}: not found`,
    ...(pgMs > 0 ? [`CPU of PostgreSQL: ${ms(pgMs / hosts)} per host (${(pgMs / 1000).toFixed(1)} s)`] : []),
  ];
  console.log(report.join('\n'));
  const out = path.join(process.cwd(), '.vaquero', 'bench-rollout.txt');
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, `${report.join('\n')}\n`);
} finally {
  await env.close();
  await rm(work, { recursive: true, force: true });
}
