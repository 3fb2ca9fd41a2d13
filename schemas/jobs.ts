import { z } from 'zod';
import { DurationSchema, IdSchema, SecretRefSchema } from './common';

const jobBase = {
  name: IdSchema,
  timeout: DurationSchema.default('5m'),
  retries: z.int().min(0).max(100).default(0),
  retry_delay: DurationSchema.default('10s'),
};

/** Fields of job definitions are templates rendered with the host's context (e.g. `{{ host.name }}`). */
export const HttpJobSchema = z.strictObject({
  ...jobBase,
  type: z.literal('http'),
  url: z.string().min(1),
  method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']).default('GET'),
  headers: z.record(z.string(), z.string()).default({}),
  bearer_token: SecretRefSchema.optional(),
  body: z.string().optional(),
  expect_status: z.array(z.int().min(100).max(599)).default([200]),
  /** A dotted path into the JSON response and the value it must have, e.g. `{ path: status, equals: ok }`. */
  expect_json: z.strictObject({ path: z.string().min(1), equals: z.unknown() }).optional(),
});

export const SshJobSchema = z.strictObject({
  ...jobBase,
  type: z.literal('ssh'),
  command: z.string().min(1),
  username: z.string().default('root'),
  port: z.int().min(1).max(65535).default(22),
  private_key: SecretRefSchema,
});

export const CommandJobSchema = z.strictObject({
  ...jobBase,
  type: z.literal('command'),
  command: z.string().min(1),
  args: z.array(z.string()).default([]),
});

export const TcpJobSchema = z.strictObject({
  ...jobBase,
  type: z.literal('tcp'),
  port: z.int().min(1).max(65535),
  host: z.string().optional(),
});

export const ContainerJobSchema = z.strictObject({
  ...jobBase,
  type: z.literal('container'),
  image: z.string().min(1),
  args: z.array(z.string()).default([]),
  env: z.record(z.string(), z.string()).default({}),
  /**
   * The container's network: the engine's default when absent; `host` shares the agent's (a job that
   * must reach the host on the provisioning network the agent is on), `none` has none.
   */
  network: z.enum(['host', 'none']).optional(),
});

export const JobSchema = z.discriminatedUnion('type', [
  HttpJobSchema,
  SshJobSchema,
  CommandJobSchema,
  TcpJobSchema,
  ContainerJobSchema,
]);
export type Job = z.infer<typeof JobSchema>;
