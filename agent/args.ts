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
  'model-dir': { type: 'string' },
  server: { type: 'string' },
  'token-file': { type: 'string' },
  ca: { type: 'string' },
  'heartbeat-ms': { type: 'string' },
  'model-poll-ms': { type: 'string' },
  'agent-name': { type: 'string' },
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
    modelDir: values['model-dir'] ?? env.VAQUERO_MODEL_DIR,
    server: values.server ?? env.VAQUERO_SERVER,
    tokenFile: values['token-file'] ?? env.VAQUERO_TOKEN_FILE,
    caFile: values.ca ?? env.VAQUERO_CA,
    heartbeatMs: values['heartbeat-ms'],
    modelPollMs: values['model-poll-ms'],
    agentName: values['agent-name'],
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
