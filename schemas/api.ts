// Request and response bodies of /api/v1, validated with zod and exported to the OpenAPI document.
import { z } from 'zod';
import { RolloutOutcomeSchema, RolloutStatusSchema, SIGNAL_NAMES } from './rollout';

/** Site names go into a visibility query, so only DNS-label-like ones are accepted. */
const SiteNameSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'must be a site name');

export const RolloutParamsSchema = z.object({
  site: SiteNameSchema,
  sha7: z.string().regex(/^[0-9a-f]{7}$/, 'must be the first 7 hex digits of the commit'),
});

export const RolloutSignalSchema = z.enum(SIGNAL_NAMES);
export type RolloutSignal = z.infer<typeof RolloutSignalSchema>;

/** `?offset=&limit=&state=&host=`: a page of a rollout's hosts (counts always cover all of them). */
export const StatusPageQuerySchema = z.strictObject({
  offset: z.coerce.number().int().min(0).optional(),
  limit: z.coerce.number().int().min(0).max(5_000).optional(),
  state: z.enum(['pending', 'running', 'succeeded', 'failed', 'skipped', 'carried-over']).optional(),
  host: z.string().max(253).optional(),
});

export const ListRolloutsQuerySchema = z.object({
  site: SiteNameSchema.optional(),
  /** Closed rollouts too, not only running ones. */
  all: z.enum(['true', 'false']).optional(),
});

export const EmptyBodySchema = z.strictObject({});
export const AbortBodySchema = z.strictObject({ reason: z.string().min(1).max(1000).optional() });
export const RetryHostBodySchema = z.strictObject({ host: z.string().min(1) });

export const SIGNAL_BODIES = {
  pause: EmptyBodySchema,
  resume: EmptyBodySchema,
  approve: EmptyBodySchema,
  abort: AbortBodySchema,
  'retry-host': RetryHostBodySchema,
} as const satisfies Record<RolloutSignal, z.ZodType>;

export const RolloutSummarySchema = z.object({
  workflowId: z.string(),
  site: z.string(),
  commit: z.string(),
  /** The phase last written to the search attributes; the status route asks the rollout itself. */
  phase: z.string(),
  execution: z.string(),
  startTime: z.string(),
  closeTime: z.string().optional(),
});
export type RolloutSummary = z.infer<typeof RolloutSummarySchema>;

export const RolloutListSchema = z.object({ rollouts: z.array(RolloutSummarySchema) });

export const RolloutStatusResponseSchema = RolloutStatusSchema.extend({
  workflowId: z.string(),
  runId: z.string(),
  execution: z.string(),
  startTime: z.string(),
  closeTime: z.string().optional(),
});

/** A command the rollout took (as an Update): its new phase and counts. */
export const CommandDoneSchema = z.object({
  status: z.literal('done'),
  signal: RolloutSignalSchema,
  workflowId: z.string(),
  rollout: RolloutOutcomeSchema,
});

export const ErrorBodySchema = z.object({ error: z.string(), requestId: z.string().optional() });
