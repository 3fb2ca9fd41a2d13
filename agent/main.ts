// `vaquero agent`: the site agent's process. It parses its configuration once, here, and runs the
// Temporal worker on vaquero-agent-<site> until SIGINT/SIGTERM.
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { AgentConfigSchema, type AgentConfig } from './config';
import { createAgentWorker } from './worker';

function jsonLog(level: string) {
  return (msg: string, fields?: object) =>
    process.stderr.write(`${JSON.stringify({ level, time: new Date().toISOString(), msg, ...fields })}\n`);
}

export function agentConfig(args: string[], env: NodeJS.ProcessEnv): AgentConfig {
  const { values } = parseArgs({
    args,
    options: {
      site: { type: 'string' },
      'state-dir': { type: 'string' },
      'temporal-address': { type: 'string' },
      namespace: { type: 'string' },
      'sim-time-scale': { type: 'string' },
      'sim-power-latency-ms': { type: 'string' },
      'in-doubt-grace-ms': { type: 'string' },
    },
    strict: true,
  });
  return AgentConfigSchema.parse({
    site: values.site ?? env.VAQUERO_SITE,
    stateDir: values['state-dir'] ?? env.VAQUERO_AGENT_STATE ?? '/var/lib/vaquero/agent',
    temporalAddress: values['temporal-address'] ?? env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233',
    namespace: values.namespace ?? env.TEMPORAL_NAMESPACE ?? 'default',
    simTimeScale: values['sim-time-scale'],
    simPowerLatencyMs: values['sim-power-latency-ms'],
    inDoubtGraceMs: values['in-doubt-grace-ms'],
  });
}

export async function runAgent(config: AgentConfig): Promise<void> {
  const logger = { info: jsonLog('info'), warn: jsonLog('warn') };
  const connection = await NativeConnection.connect({ address: config.temporalAddress });
  const clientConnection = await Connection.connect({ address: config.temporalAddress });
  const client = new Client({ connection: clientConnection, namespace: config.namespace });
  const { worker, sim } = await createAgentWorker({
    site: config.site,
    connection,
    namespace: config.namespace,
    client,
    stateDir: config.stateDir,
    secretsEnv: process.env,
    simTimeScale: config.simTimeScale,
    simPowerLatencyMs: config.simPowerLatencyMs,
    inDoubtGraceMs: config.inDoubtGraceMs,
    logger,
  });
  const stop = () => worker.shutdown();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  logger.info('agent started', { site: config.site, taskQueue: `vaquero-agent-${config.site}` });
  try {
    await worker.run();
  } finally {
    sim.close();
    await connection.close();
    await clientConnection.close();
  }
}

/** Entry point of `vaquero agent`; a bad configuration is one line on stderr and exit code 2. */
export async function main(args: string[]): Promise<number> {
  let config: AgentConfig;
  try {
    config = agentConfig(args, process.env);
  } catch (err) {
    const message =
      err instanceof Error && 'issues' in err
        ? (err as unknown as { issues: { path: PropertyKey[]; message: string }[] }).issues
            .map((i) => `${i.path.join('.')}: ${i.message}`)
            .join('; ')
        : (err as Error).message;
    process.stderr.write(`vaquero agent: ${message}\n`);
    return 2;
  }
  await runAgent(config);
  return 0;
}
