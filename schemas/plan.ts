import { z } from 'zod';
import { RebootWindowSchema } from './common';
import { PlannedGateSchema } from './gates';

export const PlannedHostSchema = z.object({
  host: z.string(),
  group: z.string(),
  reasons: z.array(z.string()).min(1),
});
export type PlannedHost = z.infer<typeof PlannedHostSchema>;

export const WaveSchema = z.object({
  index: z.int().min(1),
  canary: z.boolean(),
  groups: z.array(z.string()),
  hosts: z.array(PlannedHostSchema),
  /** The canary wave only: how long the rollout holds after it (a duration like "30m"). */
  soak: z.string().optional(),
  /** Gates judged after this wave (during the soak, for the canary); none in plans of older releases. */
  gates: z.array(PlannedGateSchema).optional(),
});
export type Wave = z.infer<typeof WaveSchema>;

export const GroupRulesSchema = z.object({
  group: z.string(),
  hosts: z.int(),
  changed: z.int(),
  batch: z.int(),
  max_fail: z.int(),
  depends_on: z.array(z.string()),
  reboot_windows: z.array(RebootWindowSchema),
});
export type GroupRules = z.infer<typeof GroupRulesSchema>;

export const SitePlanSchema = z.object({
  site: z.string(),
  name: z.string(),
  approval_required: z.boolean(),
  canary_size: z.int(),
  max_fail: z.int(),
  groups: z.array(GroupRulesSchema),
  waves: z.array(WaveSchema),
  unchanged: z.array(z.string()),
  removed: z.array(z.string()),
  /** Hosts whose boot config changed but that are marked never_provision. */
  skipped: z.array(PlannedHostSchema),
});
export type SitePlan = z.infer<typeof SitePlanSchema>;

export const PlanSchema = z.object({
  from: z.string(),
  to: z.string(),
  sites: z.array(SitePlanSchema),
});
export type Plan = z.infer<typeof PlanSchema>;

/** Segments of a plan key: a commit, a site id, and an optional tag (a takeover's replan). */
const PLAN_KEY = /^[0-9a-zA-Z_-]+(\.[0-9a-zA-Z_-]+)*(\/[0-9a-zA-Z_-]+){1,2}$/;

/**
 * Where a site's plan for a commit is stored: rollouts carry this key, never the plan, so that no
 * workflow input, result or query answer grows with the site (Temporal refuses payloads over 2 MB).
 */
export function planKey(commit: string, site: string, tag?: string): string {
  return checkPlanKey(`${commit}/${site}${tag ? `/${tag}` : ''}`);
}

export function checkPlanKey(key: string): string {
  if (!PLAN_KEY.test(key)) throw new Error(`invalid plan key ${JSON.stringify(key)}`);
  return key;
}
