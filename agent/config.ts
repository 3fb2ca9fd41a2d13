import { z } from 'zod';

export const AgentConfigSchema = z.object({
  site: z.string({ error: 'the agent needs --site (or VAQUERO_SITE)' }).min(1),
  stateDir: z.string().min(1),
  temporalAddress: z.string().min(1),
  namespace: z.string().min(1),
  simTimeScale: z.coerce.number().positive().default(1),
  simPowerLatencyMs: z.coerce.number().int().min(0).default(0),
  inDoubtGraceMs: z.coerce.number().int().min(0).default(120_000),
});
export type AgentConfig = z.infer<typeof AgentConfigSchema>;
