import { z } from 'zod';
import { IdSchema, RebootWindowSchema } from './common';
import { CanarySchema, GateSchema } from './gates';

import { MAX_CONCURRENT } from './runtime';

/** The most hosts a group (and a site) keeps in flight: what one follow call of a rollout names. */
export { MAX_CONCURRENT };

export const RolloutRulesSchema = z.strictObject({
  max_concurrent: z
    .int()
    .min(1)
    .max(
      MAX_CONCURRENT,
      `at most ${MAX_CONCURRENT}: a site rollout runs each host as a child workflow, and Temporal allows 2,000 pending children per workflow execution`,
    )
    .default(1),
  /** Hosts of this group, per site, that must stay up while others reprovision. */
  min_standing: z.int().min(0).default(0),
  /** Groups whose hosts, in the same site, are reprovisioned and standing before this group starts. */
  depends_on: z.array(IdSchema).default([]),
  /** Failed hosts this group tolerates before the rollout halts. */
  max_fail: z.int().min(0).default(0),
  /**
   * Overrides the site's canary size for rollouts that start with this group: a number, or
   * `{ size, soak: 30m }` to hold the rollout after the canary for a soak, its gates watched.
   */
  canary: z.union([z.int().min(0), CanarySchema]).optional(),
  /** Metric gates judged during the canary's soak and after each batch of this group. */
  gates: z.array(GateSchema).default([]),
  /** Overrides the site's reboot windows for this group. */
  reboot_windows: z.array(RebootWindowSchema).optional(),
});
export type RolloutRules = z.infer<typeof RolloutRulesSchema>;

/** Power cycles a host of the group gets when a boot step misses its timeout, unless the SoT says. */
export const DEFAULT_BOOT_RETRIES = 2;
/** More would keep a dead machine cycling for hours at real timeouts: fix it, then `retry-host`. */
export const MAX_BOOT_RETRIES = 10;

/** A host group: the ordered boots a host goes through, and how a change rolls out across the group. */
export const HostGroupSchema = z.strictObject({
  id: IdSchema,
  description: z.string().optional(),
  boots: z.array(IdSchema).min(1, 'a host group needs at least one boot profile'),
  /**
   * A host that misses a boot step's timeout (no DHCP, no iPXE script, no kernel, no checkpoint) is
   * power-cycled again this many times before the step fails and counts against `max_fail`.
   */
  boot_retries: z
    .int('a whole number of extra power cycles')
    .min(0, 'at least 0 (0: a missed boot step fails the host at once)')
    .max(
      MAX_BOOT_RETRIES,
      `at most ${MAX_BOOT_RETRIES}: fix a machine that misses this often, then retry-host`,
    )
    .default(DEFAULT_BOOT_RETRIES),
  rollout: RolloutRulesSchema.default({
    max_concurrent: 1,
    min_standing: 0,
    depends_on: [],
    max_fail: 0,
    gates: [],
  }),
});
export type HostGroup = z.infer<typeof HostGroupSchema>;
