import { BOOT_EVENT_BATCH_MAX_MS } from '../schemas/rollout';
import { z } from 'zod';
import { AGENT_DEPLOYMENT, BUILD_ID, DEPLOYMENT_NAME } from '../activities/build-id';

const port = (what: string) =>
  z.coerce
    .number({ error: `${what} must be a port number` })
    .int(`${what} must be a port number`)
    .min(0, `${what} must be a port number`)
    .max(65535, `${what} must be a port number`);

export const AgentConfigSchema = z
  .object({
    site: z.string({ error: 'the agent needs --site (or VAQUERO_SITE)' }).min(1),
    stateDir: z.string().min(1),
    temporalAddress: z.string().min(1),
    namespace: z.string().min(1),
    simTimeScale: z.coerce.number().positive().default(1),
    simPowerLatencyMs: z.coerce.number().int().min(0).default(0),
    inDoubtGraceMs: z.coerce.number().int().min(0).default(120_000),
    /**
     * How long a host's first boot event waits for more before they go as one signal (a checkpoint
     * goes at once). Far below the shortest step timeout: the workflow sees the steps that late.
     */
    eventBatchMs: z.coerce
      .number({ error: 'the event batch window must be a number of ms' })
      .int()
      .min(0)
      .max(
        BOOT_EVENT_BATCH_MAX_MS,
        `the event batch window must be at most ${BOOT_EVENT_BATCH_MAX_MS} ms: the workflow gives each step that much more than its timeout`,
      )
      .default(2_000),

    /**
     * A file model store (standalone: the server's store directory on the same machine). With a model
     * source the agent runs its boot services (DHCP, TFTP, HTTP); without one only the worker.
     */
    modelDir: z.string().min(1).optional(),
    /** The server's agent API (remote agents): its URL, a file holding the site's token, and its CA. */
    server: z.url({ protocol: /^https?$/, message: 'the server must be an https:// URL' }).optional(),
    tokenFile: z.string().min(1).optional(),
    caFile: z.string().min(1).optional(),
    /** Allows an http:// server, whose token and models cross the network unencrypted. */
    insecureHttp: z.boolean().default(false),
    /** How often the agent reports to the server's agent API (with --server). */
    heartbeatMs: z.coerce.number().int().min(100).default(30_000),
    /** How often the model source is asked for the applied revision. */
    modelPollMs: z.coerce
      .number()
      .int()
      .min(10, 'model poll interval must be at least 10 ms')
      .default(10_000),
    /** This agent's entry in the site's `agents` (default: the first). */
    agentName: z.string().min(1).optional(),
    /** The worker deployment this agent reports (its worker is not versioned: design.md). */
    deployment: z
      .string()
      .regex(DEPLOYMENT_NAME, "the deployment: letters, digits, '-' and '_' only, at most 100")
      .default(AGENT_DEPLOYMENT),
    /** Default: the package version plus the git commit. */
    buildId: z
      .string()
      .regex(BUILD_ID, "the build id: letters, digits, '.', '+', '-' and '_' only, at most 200")
      .optional(),
    bootInterface: z
      .string()
      .regex(/^[A-Za-z0-9_.@-]{1,15}$/, 'not an interface name')
      .optional(),
    bootAddress: z.ipv4({ error: 'the boot address must be an IPv4 address' }).optional(),
    dhcp: z.boolean().default(true),
    dhcpPort: port('the DHCP port').default(67),
    proxyPort: port('the PXE port').default(4011),
    tftp: z.boolean().default(true),
    tftpRoot: z.string().min(1).default('/usr/lib/ipxe'),
    tftpPort: port('the TFTP port').default(69),
    http: z.boolean().default(true),
    httpHost: z.string().min(1).default('0.0.0.0'),
    /** Default: the port of the agent's asset_url. */
    httpPort: port('the HTTP port').optional(),
    /** Served under /files/ (default <state-dir>/files). */
    filesDir: z.string().min(1).optional(),
    routerAdvertisements: z.boolean().default(false),
    raPrefix: z
      .string()
      .regex(/^[0-9a-fA-F:]+\/\d{1,3}$/, 'the RA prefix must look like fd77::/64')
      .optional(),
  })
  .check((ctx) => {
    const c = ctx.value;
    const issue = (message: string, path: string) =>
      ctx.issues.push({ code: 'custom', message, input: c, path: [path] });
    if (c.modelDir && c.server) issue('give either --model-dir or --server, not both', 'server');
    if (c.server && !c.tokenFile) issue('--server needs --token-file (the site token)', 'tokenFile');
    if (c.server && !c.insecureHttp && new URL(c.server).protocol === 'http:')
      issue(
        `--server ${c.server} would send the site token unencrypted: use https://, or pass ` +
          '--insecure-http where the network between agent and server is trusted',
        'server',
      );
    if (c.routerAdvertisements && !c.bootInterface)
      issue('--router-advertisements needs --boot-interface', 'routerAdvertisements');
  });
export type AgentConfig = z.infer<typeof AgentConfigSchema>;
export type AgentConfigInput = z.input<typeof AgentConfigSchema>;
