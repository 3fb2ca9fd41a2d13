import { z } from 'zod';
import { DURATION_RE } from './runtime';

/**
 * `own`: a record's own entry, or undefined: a key that comes from a request, a template or a command
 * line (`constructor`, `__proto__`, `toString`) must never reach Object.prototype's members.
 */
export { durationMs, own } from './runtime';

/** Names of Object.prototype's members: refused as ids so no model key can shadow or reach them. */
const BUILT_IN_NAMES = new Set(Object.getOwnPropertyNames(Object.prototype));

/** Identifiers appear in workflow ids, task queues and URLs, so they stay DNS-label-like. */
export const IdSchema = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'must be lowercase letters, digits and "-" (a DNS label)')
  .refine((id) => !BUILT_IN_NAMES.has(id), 'is a built-in name of JavaScript objects; choose another id');

export const MacSchema = z
  .string()
  .regex(/^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$/, 'must be a MAC address like 52:54:00:12:34:56')
  .transform((mac) => mac.toLowerCase().replaceAll('-', ':'));

export const Ipv4Schema = z.ipv4({ message: 'must be an IPv4 address like 10.0.0.1' });

export const CidrSchema = z.cidrv4({ message: 'must be an IPv4 CIDR like 10.0.0.0/24' });

export const UuidSchema = z.guid({ message: 'must be a UUID like 4c4c4544-0032-3010-8051-b4c04f4e4c32' });

/** Durations are written like Go's: "90s", "5m", "1h30m". */
export const DurationSchema = z
  .string()
  .refine((s) => s !== '' && DURATION_RE.test(s), 'must be a duration like "30s", "5m" or "1h30m"');

export const TimeOfDaySchema = z
  .string()
  .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be a time of day like "22:00"');

export const TimezoneSchema = z.string().refine((tz) => {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}, 'must be an IANA time zone like "Europe/Berlin" or "UTC"');

/**
 * A secret is referenced, never written into Git: an environment variable of the agent, or a file on it.
 * A plain string is refused with a message that says what to write instead.
 */
export const SecretRefSchema = z.union(
  [
    z.strictObject({ env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/) }),
    z.strictObject({ file: z.string().min(1) }),
  ],
  {
    error: (issue) =>
      typeof issue.input === 'string'
        ? 'plaintext secrets are not allowed in the source of truth; use { env: VAR } or { file: /path }'
        : 'must be { env: VAR } or { file: /path }',
  },
);
export type SecretRef = z.infer<typeof SecretRefSchema>;

export const MetadataSchema = z.record(z.string(), z.unknown()).default({});

export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;

/** A window in which hosts may be rebooted; `end` before `start` spans midnight. */
export const RebootWindowSchema = z.strictObject({
  days: z
    .array(z.enum(WEEKDAYS))
    .min(1)
    .default([...WEEKDAYS]),
  start: TimeOfDaySchema,
  end: TimeOfDaySchema,
  timezone: TimezoneSchema.default('UTC'),
});
export type RebootWindow = z.infer<typeof RebootWindowSchema>;
