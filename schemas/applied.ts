import { z } from 'zod';

/** How an apply was asked for: a webhook push, a local source's poll, or an operator (API, CLI). */
export const ApplyTriggerSchema = z.enum(['push', 'poll', 'operator']);
export type ApplyTrigger = z.infer<typeof ApplyTriggerSchema>;

/**
 * One move of the applied pointer, kept in the model store: a redelivered push is a duplicate by
 * this record even when its `apply/<sha>` workflow is gone (deleted, or past the retention).
 */
export const AppliedEntrySchema = z.object({
  commit: z.string().regex(/^[0-9a-f]{7,64}$/),
  /** ISO 8601, when the pointer moved. */
  at: z.string(),
  trigger: ApplyTriggerSchema,
  /** GitHub's X-GitHub-Delivery, for a push. */
  delivery: z.string().max(100).optional(),
  /** The commit it replaced; absent for a first deployment. */
  previous: z.string().optional(),
  /** Applied with `force`: not a descendant of `previous` (a rewritten history, or a rollback). */
  forced: z.boolean().optional(),
});
export type AppliedEntry = z.infer<typeof AppliedEntrySchema>;

/**
 * Entries kept, newest first. An older commit that fell out is still refused: it is an ancestor of
 * the applied one, which the order check refuses without `force`.
 */
export const APPLIED_HISTORY_LIMIT = 200;

/** What the order check made of a commit, against the applied one. */
export const ApplyOrderSchema = z.discriminatedUnion('status', [
  /** The applied pointer now names the commit; the plan runs from `previous`. */
  z.object({ status: z.literal('claimed'), previous: z.string().optional() }),
  /** Already the applied commit (a rerun of a failed apply): the plan runs from `previous` again. */
  z.object({ status: z.literal('current'), previous: z.string().optional() }),
  /** Not a descendant of the applied commit: refused, the pointer stays. */
  z.object({ status: z.literal('stale'), applied: z.string(), reason: z.string() }),
]);
export type ApplyOrder = z.infer<typeof ApplyOrderSchema>;

/** POST /api/v1/apply: an operator's apply of one commit (`vaquero apply`). */
export const ApplyRequestSchema = z.strictObject({
  /** A full or abbreviated SHA, or any revision git resolves (a tag). */
  commit: z
    .string()
    .regex(/^[0-9A-Za-z._/][0-9A-Za-z._/-]{0,199}$/, 'must be a git revision (not starting with -)'),
  /** The source's name in the server config; optional when there is one source. */
  source: z.string().min(1).max(100).optional(),
  /** Apply even when the commit does not descend from the applied one. */
  force: z.boolean().optional(),
});
export type ApplyRequest = z.infer<typeof ApplyRequestSchema>;
