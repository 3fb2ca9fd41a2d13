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
