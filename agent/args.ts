// `vaquero agent`'s flags: each falls back to its environment variable where it has one, and the
// schema in config.ts supplies the defaults and the error messages.
import { parseArgs } from 'node:util';
import { AgentConfigSchema, type AgentConfig, type AgentConfigInput } from './config';

const OPTIONS = {
  site: { type: 'string' },
  'state-dir': { type: 'string' },
  'temporal-address': { type: 'string' },
  namespace: { type: 'string' },
  'sim-time-scale': { type: 'string' },
  'sim-power-latency-ms': { type: 'string' },
  'in-doubt-grace-ms': { type: 'string' },
  'event-batch-ms': { type: 'string' },
  'model-dir': { type: 'string' },
  server: { type: 'string' },
  'token-file': { type: 'string' },
  ca: { type: 'string' },
  'insecure-http': { type: 'boolean' },
  'heartbeat-ms': { type: 'string' },
  'model-poll-ms': { type: 'string' },
  'agent-name': { type: 'string' },
  deployment: { type: 'string' },
  'build-id': { type: 'string' },
  'boot-interface': { type: 'string' },
  'boot-address': { type: 'string' },
  'no-dhcp': { type: 'boolean' },
  'dhcp-port': { type: 'string' },
  'proxy-port': { type: 'string' },
  'no-tftp': { type: 'boolean' },
  'tftp-root': { type: 'string' },
  'tftp-port': { type: 'string' },
  'no-http': { type: 'boolean' },
  'http-host': { type: 'string' },
  'http-port': { type: 'string' },
  'files-dir': { type: 'string' },
  'router-advertisements': { type: 'boolean' },
  'ra-prefix': { type: 'string' },
} as const;

export const AGENT_USAGE = `usage: vaquero agent --site <site> [options]   (docs/agent.md)

model source (one of; none: only the Temporal worker runs):
  --model-dir <dir>          the server's file model store on this machine (standalone)
  --server <https://…>       the server's agent API; needs --token-file
  --token-file <file>        this agent's token (per-agent or the site's)
  --ca <pem>                 the CA that signed the server's certificate (default: the system's)
  --insecure-http            allow an http:// --server: the token and models travel in cleartext,
                             so only where the network between agent and server is trusted
  --agent-name <name>        this agent's entry in the site's agents; its name in heartbeats
  --heartbeat-ms <ms>        how often a remote agent reports (30000)
  --model-poll-ms <ms>       how often the model source is asked (10000)

temporal:
  --temporal-address <h:p>   (TEMPORAL_ADDRESS, 127.0.0.1:7233)   --namespace <ns> (default)
  --state-dir <dir>          model cache, netboot table, journals (/var/lib/vaquero/agent)
  --event-batch-ms <ms>      how long a host's boot events gather into one signal (2000)
  --deployment <name>        the worker deployment it reports (VAQUERO_AGENT_DEPLOYMENT, vaquero-agent)
  --build-id <id>            (VAQUERO_BUILD_ID, the package version + git commit)

boot services:
  --boot-interface <if>      --boot-address <ipv4>
  --no-dhcp  --dhcp-port <p>  --proxy-port <p>
  --no-tftp  --tftp-root <dir>  --tftp-port <p>
  --no-http  --http-host <addr>  --http-port <p>  --files-dir <dir>
  --router-advertisements  --ra-prefix <prefix>
`;

export function agentConfig(args: string[], env: NodeJS.ProcessEnv): AgentConfig {
  const { values } = parseArgs({ args, options: OPTIONS, strict: true });
  const input = {
    site: values.site ?? env.VAQUERO_SITE,
    stateDir: values['state-dir'] ?? env.VAQUERO_AGENT_STATE ?? '/var/lib/vaquero/agent',
    temporalAddress: values['temporal-address'] ?? env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233',
    namespace: values.namespace ?? env.TEMPORAL_NAMESPACE ?? 'default',
    simTimeScale: values['sim-time-scale'],
    simPowerLatencyMs: values['sim-power-latency-ms'],
    inDoubtGraceMs: values['in-doubt-grace-ms'],
    eventBatchMs: values['event-batch-ms'],
    modelDir: values['model-dir'] ?? env.VAQUERO_MODEL_DIR,
    server: values.server ?? env.VAQUERO_SERVER,
    tokenFile: values['token-file'] ?? env.VAQUERO_TOKEN_FILE,
    caFile: values.ca ?? env.VAQUERO_CA,
    insecureHttp: values['insecure-http'] ?? false,
    heartbeatMs: values['heartbeat-ms'],
    modelPollMs: values['model-poll-ms'],
    agentName: values['agent-name'],
    deployment: values.deployment ?? env.VAQUERO_AGENT_DEPLOYMENT,
    buildId: values['build-id'] ?? env.VAQUERO_BUILD_ID,
    bootInterface: values['boot-interface'],
    bootAddress: values['boot-address'],
    dhcp: !values['no-dhcp'],
    dhcpPort: values['dhcp-port'],
    proxyPort: values['proxy-port'],
    tftp: !values['no-tftp'],
    tftpRoot: values['tftp-root'],
    tftpPort: values['tftp-port'],
    http: !values['no-http'],
    httpHost: values['http-host'],
    httpPort: values['http-port'],
    filesDir: values['files-dir'],
    routerAdvertisements: values['router-advertisements'] ?? false,
    raPrefix: values['ra-prefix'],
  } satisfies Partial<AgentConfigInput>;
  return AgentConfigSchema.parse(input);
}

/** A bad configuration as one line: each zod issue as `field: message`, else the error's message. */
export function configMessage(err: unknown): string {
  if (err instanceof Error && 'issues' in err)
    return (err as unknown as { issues: { path: PropertyKey[]; message: string }[] }).issues
      .map((i) => `${i.path.join('.')}: ${i.message}`)
      .join('; ');
  return err instanceof Error ? err.message : String(err);
}
