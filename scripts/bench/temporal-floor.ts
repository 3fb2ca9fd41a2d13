// What the Temporal server alone spends per workflow of a host's shape (not a test): N workflows
// of 21 history events each (a local activity, an activity, a deadline timer, two signals) with
// no Vaquero code in them, at most C in flight, on the server at --address. Prints the server's CPU
// per workflow and per event next to this process's (the worker and the client), so the rollout
// benchmark's "CPU per host, Temporal" can be read against the floor this machine and this server
// give any workflow of that shape.
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { cpuMsOf, postgresCpuMs, temporalServerCpuMs } from './lib/cpu';
import { step } from './lib/floor-workflow';
import { CommitAttribute, HostGroupAttribute, SiteAttribute } from '../../schemas/search-attributes';

const { values } = parseArgs({
  options: {
    workflows: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '100' },
    address: { type: 'string', default: process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233' },
    namespace: { type: 'string', default: 'vaquero-bench' },
    'search-attributes': { type: 'boolean', default: false },
  },
});
const total = Number(values.workflows);
const inFlight = Number(values.concurrency);
const address = values.address;
const namespace = values.namespace;
const taskQueue = `floor-${process.pid}`;

Runtime.install({ logger: new DefaultLogger('WARN') });
const connection = await Connection.connect({ address });
const client = new Client({ connection, namespace });
const signalLater = (workflowId: string) => {
  const handle = client.workflow.getHandle(workflowId);
  setTimeout(() => void handle.signal(step, 'network').catch(() => undefined), 1_000);
  setTimeout(() => void handle.signal(step, 'checkpoint').catch(() => undefined), 2_000);
};
const native = await NativeConnection.connect({ address });
const worker = await Worker.create({
  connection: native,
  namespace,
  taskQueue,
  workflowsPath: fileURLToPath(new URL('./lib/floor-workflow.ts', import.meta.url)),
  activities: { note: () => Promise.resolve() },
});
// The "agent": a worker of its own task queue, so the activity is matched as a host's power cycle is.
const agent = await Worker.create({
  connection: native,
  namespace,
  taskQueue: `${taskQueue}-agent`,
  activities: { work: (id: string) => Promise.resolve(signalLater(id)) },
});
const running = Promise.all([worker.run(), agent.run()]);

const before = {
  temporal: temporalServerCpuMs(address),
  postgres: postgresCpuMs(),
  self: cpuMsOf(process.pid),
};
const started = Date.now();
let next = 0;
async function lane(): Promise<void> {
  while (next < total) {
    const workflowId = `floor/${process.pid}/${next++}`;
    const handle = await client.workflow.start('floorWorkflow', {
      taskQueue,
      workflowId,
      args: [workflowId, `${taskQueue}-agent`],
      // As the rollout starts host workflows: site, commit and group, a summary and details.
      ...(values['search-attributes']
        ? {
            typedSearchAttributes: [
              { key: SiteAttribute, value: 'floor' },
              { key: CommitAttribute, value: `${process.pid}` },
              { key: HostGroupAttribute, value: 'group' },
            ],
            staticSummary: `reprovision ${workflowId} (group)`,
            staticDetails: `Why: floor benchmark\nRollout: floor/${process.pid}`,
          }
        : {}),
    });
    await handle.result();
  }
}
await Promise.all(Array.from({ length: inFlight }, lane));
const wallS = (Date.now() - started) / 1000;
const after = {
  temporal: temporalServerCpuMs(address),
  postgres: postgresCpuMs(),
  self: cpuMsOf(process.pid),
};
// Events per workflow: the mean over a sample (a signal that lands during a task shares it).
const sample = Array.from({ length: Math.min(total, 20) }, (_, i) => `floor/${process.pid}/${i}`);
const counts = await Promise.all(
  sample.map(async (id) => (await client.workflow.getHandle(id).fetchHistory()).events?.length ?? 0),
);
const events = counts.reduce((a, b) => a + b, 0) / counts.length;
worker.shutdown();
agent.shutdown();
await running;

const per = (a?: number, b?: number) => (a === undefined || b === undefined ? NaN : (a - b) / total);
const temporal = per(after.temporal, before.temporal);
const postgres = per(after.postgres, before.postgres);
console.log(
  `${total} workflows of ${events.toFixed(1)} events, ${inFlight} in flight, on ${address}: ${wallS.toFixed(1)} s, ${(total / wallS).toFixed(1)} workflows/s`,
);
console.log(
  `CPU per workflow: Temporal server ${temporal.toFixed(1)} ms (${(temporal / events).toFixed(2)} ms per event), ` +
    `PostgreSQL ${postgres.toFixed(1)} ms, this process (worker + client) ${per(after.self, before.self).toFixed(1)} ms`,
);
await connection.close();
