import { z } from 'zod';

/** What the CLI takes from its environment; the entry point builds it, commands receive it. */
export const CliConfigSchema = z.object({
  /** TEMPORAL_ADDRESS, the same variable the `temporal` CLI reads. */
  temporalAddress: z.string().min(1).default('127.0.0.1:7233'),
  /** TEMPORAL_NAMESPACE. */
  temporalNamespace: z.string().min(1).default('default'),
  /** stdout is a terminal: `rollout watch` redraws in place instead of printing a line per change. */
  tty: z.boolean().default(false),
});
export type CliConfig = z.infer<typeof CliConfigSchema>;
export type CliConfigInput = z.input<typeof CliConfigSchema>;

/** The config from environment variables; an empty variable counts as unset. */
export function cliConfigFromEnv(env: Readonly<Record<string, string | undefined>>, tty: boolean): CliConfig {
  return CliConfigSchema.parse({
    temporalAddress: env.TEMPORAL_ADDRESS || undefined,
    temporalNamespace: env.TEMPORAL_NAMESPACE || undefined,
    tty,
  });
}
