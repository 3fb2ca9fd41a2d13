// What agents and the server tell each other, and the agent's own records of armed hosts.
import { z } from 'zod';

/** An agent's heartbeat to the server (`POST /agent/v1/sites/:site/heartbeat`). */
export const AgentHeartbeatSchema = z.strictObject({
  agent: z.string().min(1).max(120),
  version: z.string().min(1).max(80),
  site: z.string().min(1).max(120),
});
export type AgentHeartbeat = z.infer<typeof AgentHeartbeatSchema>;

/** A host armed for network boot: its requests get the netboot script of this stage of this commit. */
export const ArmEntrySchema = z.object({
  mac: z.string(),
  site: z.string(),
  host: z.string(),
  commit: z.string(),
  stage: z.number().int(),
  /** The reprovision workflow that boot events of this MAC are delivered to. */
  workflowId: z.string(),
  armedAt: z.string(),
  /**
   * The secret of this boot (random, made at arming): the host's unattended config, checkpoint and
   * agent-served kernel URLs carry it, and a request without it completes nothing (docs/security.md).
   * It is kept with the entry, so every copy of an arm entry carries it, and never leaves the agent.
   */
  token: z.string().min(22),
  /** The workflow takes `boot-events` batches; older ones know only `boot-event`, one per event. */
  batches: z.boolean().optional(),
  /** The host's last stage: the agent disarms it on this stage's checkpoint and says so in the batch. */
  disarmAtCheckpoint: z.boolean().optional(),
});
export type ArmEntry = z.infer<typeof ArmEntrySchema>;

/** Power-claim keys: workflow id, run id and stage, never whitespace (kept in query strings and bodies). */
export const ClaimKeySchema = z.string().regex(/^[0-9A-Za-z._:@#=+/-]{1,400}$/, 'must be a power-claim key');

/**
 * The site's boot state as the server holds it (docs/ha.md): every agent of the site watches it
 * (`GET /agent/v1/arms?since=<revision>`) and caches the arms in its netboot.json.
 */
export const SiteArmsSchema = z.strictObject({
  /** Grows with every arm and disarm of the site; a watcher asks for what comes after its own. */
  revision: z.number().int().nonnegative(),
  arms: z.array(ArmEntrySchema),
  /**
   * The store's id, made when the site's document is first written: another one means the store
   * was wiped or replaced, whatever the revision says. Sent only to agents that ask with `epoch=`.
   */
  epoch: z.string().max(64).optional(),
});
export type SiteArms = z.infer<typeof SiteArmsSchema>;

/** `DELETE /agent/v1/arms/:mac`'s answer: whether the arm was there (of that workflow). */
export const DisarmResultSchema = z.strictObject({
  revision: z.number().int().nonnegative(),
  disarmed: z.boolean(),
});

/**
 * A power cycle's claim in the site's shared ledger: begun (recorded before the BMC is told), done
 * (after it answered), and the first boot traffic any agent of the site saw from the MAC since.
 */
export const PowerClaimSchema = z.strictObject({
  key: ClaimKeySchema,
  mac: z.string(),
  begun: z.string(),
  done: z.string().optional(),
  /** When an agent first heard the MAC on the boot network at or after `begun`. */
  seen: z.string().optional(),
  /** The agent that began it, for the logs. */
  agent: z.string().max(120).optional(),
});
export type PowerClaim = z.infer<typeof PowerClaimSchema>;

/** `PUT /agent/v1/claims/:key`: the claim's begin. */
export const ClaimBeginSchema = z.strictObject({
  mac: z.string().regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/, 'must be a lowercase MAC address'),
  at: z.iso.datetime(),
  agent: z.string().min(1).max(120).optional(),
});

/** `POST /agent/v1/seen`: boot traffic of armed MACs, batched (at most one line per MAC). */
export const SeenReportSchema = z.strictObject({
  seen: z
    .array(
      z.strictObject({
        mac: z.string().regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/, 'must be a lowercase MAC address'),
        at: z.iso.datetime(),
      }),
    )
    .max(512),
});
export type SeenReport = z.infer<typeof SeenReportSchema>;
