import { z } from 'zod';
import { DurationSchema, durationMs, SecretRefSchema } from './common';

/** `must` is a comparison against a number: "== 0", "< 0.05", ">= 1e3". */
const MUST_RE = /^\s*(==|!=|<=|>=|<|>)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$/;
export const GATE_OPERATORS = ['==', '!=', '<=', '>=', '<', '>'] as const;
export type GateOperator = (typeof GATE_OPERATORS)[number];

/** A gate's threshold, parsed: every sample the query returns must satisfy `value <op> threshold`. */
export function parseMust(must: string): { op: GateOperator; threshold: number } | undefined {
  const m = MUST_RE.exec(must);
  if (!m) return undefined;
  const threshold = Number(m[2]);
  if (!Number.isFinite(threshold)) return undefined;
  return { op: m[1] as GateOperator, threshold };
}

export function satisfies(value: number, must: string): boolean {
  const parsed = parseMust(must);
  if (!parsed || Number.isNaN(value)) return false;
  const { op, threshold } = parsed;
  switch (op) {
    case '==':
      return value === threshold;
    case '!=':
      return value !== threshold;
    case '<=':
      return value <= threshold;
    case '>=':
      return value >= threshold;
    case '<':
      return value < threshold;
    case '>':
      return value > threshold;
  }
}

/** Zod runs every refinement: a string that is no duration is reported by DurationSchema, not here. */
function atLeastASecond(d: string): boolean {
  try {
    return durationMs(d) >= 1000;
  } catch {
    return true;
  }
}

/**
 * A metric gate: a PromQL query (a template: `{{ host.ipv4 }}`, `{{ host.name }}`, ... of each host
 * it judges) against Prometheus' HTTP API, whose every sample must satisfy `must`, checked `every` for
 * `for`. Prometheus unreachable, or a query that returns nothing, fails the gate unless it says so.
 */
export const GateSchema = z.strictObject({
  /** Shown in plans, status and halts; default: the query. */
  name: z.string().min(1).max(100).optional(),
  prometheus: z.url({
    protocol: /^https?$/,
    message: 'must be the http(s) URL of a Prometheus, like http://prometheus:9090',
  }),
  query: z.string().min(1, 'give a PromQL query').max(4096),
  must: z
    .string()
    .refine(
      (s) => parseMust(s) !== undefined,
      'must be a comparison with a number, like "== 0", "< 0.05" or ">= 1"',
    ),
  /** How long the gate is watched after a batch (and at least during the canary's soak); default 0: once. */
  for: DurationSchema.optional(),
  /** How often it is evaluated while watched. */
  every: DurationSchema.refine(atLeastASecond, 'must be at least 1s').default('30s'),
  /** A Prometheus that cannot be reached (or answers an error): `fail` (default) halts, `pass` goes on. */
  on_unreachable: z.enum(['fail', 'pass']).default('fail'),
  /** A query that returns no sample: `fail` (default) halts, `pass` goes on. */
  on_empty: z.enum(['fail', 'pass']).default('fail'),
  /** Sent as `Authorization: Bearer`; resolved by the server at run time, like job tokens. */
  token: SecretRefSchema.optional(),
});
export type Gate = z.infer<typeof GateSchema>;

/** A canary with a soak: the rollout holds after the canary wave for `soak`, its gates watched. */
export const CanarySchema = z.strictObject({
  size: z.int().min(0).optional(),
  soak: DurationSchema.optional(),
});
export type Canary = z.infer<typeof CanarySchema>;

/** A gate as a plan carries it: where it comes from (a group id, or `site`). */
export const PlannedGateSchema = z.object({
  name: z.string().optional(),
  from: z.string(),
  prometheus: z.string(),
  query: z.string(),
  must: z.string(),
  for: z.string().optional(),
  every: z.string(),
  on_unreachable: z.enum(['fail', 'pass']),
  on_empty: z.enum(['fail', 'pass']),
  token: SecretRefSchema.optional(),
});
export type PlannedGate = z.infer<typeof PlannedGateSchema>;

/** What one evaluation of a gate found, as the rollout records it (never a secret). */
export interface GateCheck {
  ok: boolean;
  /** The gate's name, or its query. */
  gate: string;
  /** The query as sent (rendered for a host), and the first sample that broke `must`, if any. */
  query: string;
  value?: string;
  labels?: string;
  /** When Prometheus evaluated it (or when it could not be reached), ISO 8601. */
  at: string;
  /** Why it failed, in words: names query, value, threshold, time and the failing hosts. */
  reason?: string;
  /** A failure of a per-host query: the hosts it failed on (the first few, in plan order). */
  hosts?: string[];
  /** How many hosts' queries were evaluated (a failure stops the others from being asked). */
  checked?: number;
}
