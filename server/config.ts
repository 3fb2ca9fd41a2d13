// The server's config file, parsed once by its entry point. Secrets are referenced, never inlined:
// the config can be committed and shown, and secrets are resolved from the environment or files.
import path from 'node:path';
import { z } from 'zod';
import { own } from '../schemas/common';

/** A secret by reference: an environment variable's name, or a file (e.g. a Kubernetes secret mount). */
export const SecretRefSchema = z.union([
  z.strictObject({ env: z.string().min(1) }),
  z.strictObject({ file: z.string().min(1) }),
]);
export type SecretRef = z.infer<typeof SecretRefSchema>;

/** The `:hook` of `POST /postreceive/:hook`, so URL-safe. */
const HookNameSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'must be a URL-safe name');

const commonFields = {
  name: HookNameSchema,
  /** Pushes to this branch are applied; pushes to others are ignored. */
  branch: z.string().min(1).default('main'),
  /** The SoT's directory inside the repository. */
  path: z.string().min(1).default('.'),
};
const sourceFields = { ...commonFields, webhook_secret: SecretRefSchema };

export const SotSourceSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('git'),
    ...sourceFields,
    /** A local git repository (or a clone kept up to date by the operator). */
    repo: z.string().min(1),
  }),
  z.strictObject({
    kind: z.literal('github'),
    ...sourceFields,
    /** owner/name; a push from another repository is ignored. */
    repo: z.string().regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, 'must be owner/name'),
    /** The local clone the server reads commits from. */
    checkout: z.string().min(1),
  }),
  z.strictObject({
    kind: z.literal('local'),
    ...commonFields,
    /** A directory on this machine, polled: no webhook reaches it. */
    dir: z.string().min(1),
    /**
     * `commits`: `dir` is a git repository and a new commit on `branch` is applied; `files`: any
     * change of the files is applied (snapshotted first); `auto`: commits if `dir` is a git repository.
     */
    track: z.enum(['auto', 'commits', 'files']).default('auto'),
    poll_seconds: z.number().min(0.1).max(86_400).default(5),
  }),
]);
export type SotSource = z.infer<typeof SotSourceSchema>;

export const ServerConfigSchema = z.strictObject({
  listen: z
    .strictObject({
      host: z.string().min(1).default('127.0.0.1'),
      port: z.int().min(0).max(65535).default(8080),
    })
    .default({ host: '127.0.0.1', port: 8080 }),
  temporal: z
    .strictObject({
      address: z.string().min(1).default('127.0.0.1:7233'),
      namespace: z.string().min(1).default('default'),
      /** Create the namespace and register the search attributes when missing (off where an operator owns them). */
      setup: z.boolean().default(true),
    })
    .default({ address: '127.0.0.1:7233', namespace: 'default', setup: true }),
  /** Where the file store keeps model revisions, and where local sources' snapshots live. */
  store: z
    .strictObject({ dir: z.string().min(1).default('./.vaquero/store') })
    .default({ dir: './.vaquero/store' }),
  /** Pull requests are validated and planned, and the result posted back as a commit status. */
  github: z
    .strictObject({
      api_url: z.url().default('https://api.github.com'),
      /** A token that may write commit statuses (and check runs, see `check_runs`). */
      token: SecretRefSchema.optional(),
      /** Also create a check run with the plan; GitHub allows it to GitHub App tokens only. */
      check_runs: z.boolean().default(false),
    })
    .default({ api_url: 'https://api.github.com', check_runs: false }),
  sources: z
    .array(SotSourceSchema)
    .default([])
    .refine((s) => new Set(s.map((x) => x.name)).size === s.length, 'source names must be unique'),
  api: z.strictObject({
    /** Bearer tokens of the user API; the name goes into the logs, never the token. */
    tokens: z.array(z.strictObject({ name: z.string().min(1), token: SecretRefSchema })).min(1),
  }),
  /**
   * Site agents' bearer tokens (/agent/v1): a token gives access to its own site's models only. With
   * `agent`, it reports for that agent alone, and the site's other tokens cannot report as it.
   */
  agents: z
    .strictObject({
      tokens: z
        .array(
          z.strictObject({
            site: z.string().min(1),
            name: z.string().min(1),
            agent: z.string().min(1).max(120).optional(),
            token: SecretRefSchema,
          }),
        )
        .default([])
        .refine(
          (t) =>
            new Set(t.flatMap((x) => (x.agent ? [`${x.site}/${x.agent}`] : []))).size ===
            t.filter((x) => x.agent).length,
          'one token per agent: two tokens name the same site and agent',
        ),
      /** A site whose agents have all been silent this long is reported unreachable. */
      unreachable_after_s: z.number().positive().default(60),
      /** An agent silent this long is dropped from the agents list and from memory. */
      forget_after_s: z.number().positive().default(86_400),
      /** Agent names a site token may report per site; a new name beyond it is refused (429). */
      max_agents_per_site: z.int().min(1).max(100_000).default(32),
      /** The same bound over all sites. */
      max_agents: z.int().min(1).max(1_000_000).default(1024),
    })
    .default({
      tokens: [],
      unreachable_after_s: 60,
      forget_after_s: 86_400,
      max_agents_per_site: 32,
      max_agents: 1024,
    }),
  /** Serve HTTPS with these PEM files (`vaquero certs` makes a development CA and certificate). */
  tls: z.strictObject({ cert: z.string().min(1), key: z.string().min(1) }).optional(),
  /** High availability: model revisions in etcd, and leader election among the servers sharing it. */
  ha: z
    .strictObject({
      etcd: z.strictObject({
        endpoints: z.array(z.string().regex(/^https?:\/\/[^/]+$/, 'must be http(s)://host:port')).min(1),
        prefix: z
          .string()
          .regex(/^\/(.*\/)?$/, 'must start and end with /')
          .default('/vaquero/'),
        /** How long a crashed leader blocks the election; etcd raises anything below its minimum (~2 s). */
        lease_ttl_s: z.int().min(1).max(60).default(2),
        /** Servers with the same election name (and prefix) elect one leader among them. */
        election: z.string().min(1).default('vaquero-server'),
      }),
    })
    .optional(),
  /** GitHub caps payloads at 25 MB, but a push of a SoT repository is far smaller. */
  webhook_body_limit: z
    .int()
    .positive()
    .default(5 * 1024 * 1024),
});
export type ServerConfig = z.infer<typeof ServerConfigSchema>;
export type ServerConfigInput = z.input<typeof ServerConfigSchema>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** The config from its parsed file (YAML or JSON); every problem in one message. */
export function parseServerConfig(raw: unknown): ServerConfig {
  const parsed = ServerConfigSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
  throw new ConfigError(`invalid server config:\n${lines.join('\n')}`);
}

/** A source that GitHub or a git hook notifies, as opposed to a polled local one. */
export type HookedSource = Exclude<SotSource, { kind: 'local' }>;
export type LocalSource = Extract<SotSource, { kind: 'local' }>;

/** The directory applyCommitWorkflow reads a source's SoT from (a local source's, when it tracks commits). */
export function sourceDir(source: SotSource): string {
  const root = source.kind === 'git' ? source.repo : source.kind === 'github' ? source.checkout : source.dir;
  return path.resolve(root, source.path);
}

export interface Secrets {
  /** Webhook secret per source name. */
  webhooks: ReadonlyMap<string, string>;
  apiTokens: readonly { name: string; token: string }[];
  /** The token for GitHub's API, when configured. */
  githubToken?: string;
  /** Agent tokens with their site, and their agent for a per-agent token (absent: no agent may call). */
  agentTokens?: readonly { site: string; name: string; agent?: string; token: string }[];
}

export interface SecretReaders {
  env: Readonly<Record<string, string | undefined>>;
  readFile(file: string): Promise<string>;
}

async function resolveSecret(ref: SecretRef, where: string, readers: SecretReaders): Promise<string> {
  let value: string | undefined;
  if ('env' in ref) value = own(readers.env, ref.env);
  else {
    try {
      value = await readers.readFile(ref.file);
    } catch (err) {
      throw new ConfigError(`${where}: cannot read ${ref.file}: ${(err as Error).message}`);
    }
  }
  // A secret file usually ends in a newline that is not part of the secret.
  const secret = value?.replace(/\r?\n$/, '');
  if (!secret) {
    const from = 'env' in ref ? `environment variable ${ref.env}` : `file ${ref.file}`;
    throw new ConfigError(`${where}: ${from} is unset or empty`);
  }
  return secret;
}

/** Every referenced secret, read once at start-up so a missing one stops the server at once. */
export async function resolveSecrets(config: ServerConfig, readers: SecretReaders): Promise<Secrets> {
  const webhooks = new Map<string, string>();
  for (const source of config.sources)
    if (source.kind !== 'local')
      webhooks.set(
        source.name,
        await resolveSecret(source.webhook_secret, `sources.${source.name}.webhook_secret`, readers),
      );
  const apiTokens: { name: string; token: string }[] = [];
  for (const { name, token } of config.api.tokens)
    apiTokens.push({ name, token: await resolveSecret(token, `api.tokens.${name}`, readers) });
  const githubToken =
    config.github.token && (await resolveSecret(config.github.token, 'github.token', readers));
  const agentTokens: { site: string; name: string; agent?: string; token: string }[] = [];
  for (const { site, name, agent, token } of config.agents.tokens)
    agentTokens.push({
      site,
      name,
      ...(agent ? { agent } : {}),
      token: await resolveSecret(token, `agents.tokens.${name}`, readers),
    });
  return { webhooks, apiTokens, githubToken, agentTokens };
}
