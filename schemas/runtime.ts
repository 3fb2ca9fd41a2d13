// What workflow code uses at run time from the schemas, without zod. A workflow bundle runs every
// module a workflow imports afresh for each new workflow (the reusable V8 context shares only
// modules loaded before any workflow), and building zod's schemas was most of a host workflow's
// CPU: at 10,000 hosts, about 80 ms of the server's 110 ms per host (issue 12). So workflows/
// imports values from here and only types from the zod modules (eslint enforces it);
// schemas/rollout.ts and friends re-export these, so everything else is unchanged.
import type { BootEvent, BootEventBatch, HostProgress, StepTimeouts } from './rollout';

/** The server's orchestration task queue; datacenter work runs on `agentTaskQueue(site)`. */
export const SERVER_TASK_QUEUE = 'vaquero-server';
export function agentTaskQueue(site: string): string {
  return `vaquero-agent-${site}`;
}

export const sha7 = (commit: string) => commit.slice(0, 7);
export const rolloutWorkflowId = (site: string, commit: string) => `rollout/${site}/${sha7(commit)}`;
export const hostWorkflowId = (site: string, host: string, commit: string, attempt = 1) =>
  `host/${site}/${host}/${sha7(commit)}${attempt > 1 ? `/retry-${attempt - 1}` : ''}`;
export const applyWorkflowId = (commit: string) => `apply/${commit}`;

/** The steps of one boot stage of a host, in order. Boot steps wait for events from the agent. */
export const HOST_STEPS = [
  'pre-shutdown',
  'arm',
  'power-cycle',
  'dhcp',
  'ipxe',
  'kernel',
  'image',
  'checkpoint',
  'disarm',
  'validation',
] as const;

export const BOOT_EVENT_KINDS = [
  'dhcp',
  'tftp',
  'ipxe',
  'kernel',
  'initrd',
  'unattended',
  'image',
  'checkpoint',
] as const;

/** Most events one `boot-events` signal carries: a boot has seven kinds, repeats are dropped. */
export const MAX_BATCH_EVENTS = 64;

/**
 * The longest an agent holds a host's boot events to send them as one batch. A batched host
 * workflow gives each boot step this much more than its timeout: an event held in a batch is late by
 * up to the window, and a step timeout shorter than it (a lab's, a test's) would fail a host that
 * booted in time.
 */
export const BOOT_EVENT_BATCH_MAX_MS = 2_000;

export const DEFAULT_STEP_TIMEOUTS: StepTimeouts = {
  dhcp: 5 * 60_000,
  ipxe: 2 * 60_000,
  kernel: 5 * 60_000,
  checkpoint: 30 * 60_000,
};

/** Most host entries a `status` query answers at once by default. */
export const DEFAULT_STATUS_HOSTS = 1_000;

/** A group's max_concurrent at most, and the hosts a site keeps in flight. */
export const MAX_CONCURRENT = 2000;

/** `record[key]` only when it is the record's own property: `constructor` never reaches a prototype. */
export function own<T>(record: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

export const HOST_STATE_CODES: Record<HostProgress['state'], string> = {
  pending: 'p',
  running: 'r',
  succeeded: 's',
  failed: 'f',
  skipped: 'k',
  'carried-over': 'c',
};
const STATE_OF_CODE = new Map(
  Object.entries(HOST_STATE_CODES).map(([k, v]) => [v, k as HostProgress['state']]),
);
export function hostStateOf(code: string | undefined): HostProgress['state'] | undefined {
  return code === undefined ? undefined : STATE_OF_CODE.get(code);
}

/** "30s", "5m", "1h30m": what SoT durations look like. */
export const DURATION_RE = /^(\d+h)?(\d+m)?(\d+s)?$/;

/** A SoT duration in milliseconds (one DurationSchema accepted). */
export function durationMs(duration: string): number {
  const m = DURATION_RE.exec(duration);
  if (!m) throw new Error(`invalid duration ${duration}`);
  const [h, min, s] = [m[1], m[2], m[3]].map((p) => (p ? Number.parseInt(p, 10) : 0));
  return ((h ?? 0) * 3600 + (min ?? 0) * 60 + (s ?? 0)) * 1000;
}

type Checked<T> = { ok: true; value: T } | { ok: false; error: string };

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const isStage = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 1;

function checkEvent(v: unknown, at: string): Checked<BootEvent> {
  if (!isRecord(v)) return { ok: false, error: `${at}: expected an object` };
  const { kind, mac, stage, at: when, detail, reported } = v;
  if (!(BOOT_EVENT_KINDS as readonly unknown[]).includes(kind))
    return { ok: false, error: `${at}.kind: expected one of ${BOOT_EVENT_KINDS.join(', ')}` };
  if (typeof mac !== 'string') return { ok: false, error: `${at}.mac: expected a string` };
  if (stage !== undefined && !isStage(stage))
    return { ok: false, error: `${at}.stage: expected a whole number >= 1` };
  if (typeof when !== 'string') return { ok: false, error: `${at}.at: expected a string` };
  if (detail !== undefined && typeof detail !== 'string')
    return { ok: false, error: `${at}.detail: expected a string` };
  if (reported !== undefined && reported !== false)
    return { ok: false, error: `${at}.reported: expected false` };
  // Unknown keys are dropped, as the zod schema (BootEventSchema) does.
  const event: BootEvent = { kind: kind as BootEvent['kind'], mac, at: when };
  if (stage !== undefined) event.stage = stage;
  if (detail !== undefined) event.detail = detail;
  if (reported !== undefined) event.reported = false;
  return { ok: true, value: event };
}

/**
 * The `boot-events` signal's batch, checked as BootEventBatchSchema would (the unit tests hold both
 * to the same answers), by hand: workflow code stays free of zod.
 */
export function checkBootEventBatch(v: unknown): Checked<BootEventBatch> {
  if (!isRecord(v)) return { ok: false, error: 'expected an object' };
  if (!Array.isArray(v.events) || v.events.length < 1 || v.events.length > MAX_BATCH_EVENTS)
    return { ok: false, error: `events: expected 1 to ${MAX_BATCH_EVENTS} events` };
  const events: BootEvent[] = [];
  for (const [i, e] of v.events.entries()) {
    const checked = checkEvent(e, `events[${i}]`);
    if (!checked.ok) return checked;
    events.push(checked.value);
  }
  const batch: BootEventBatch = { events };
  if (v.disarmed !== undefined) {
    const d = v.disarmed;
    if (!isRecord(d) || !isStage(d.stage) || typeof d.at !== 'string')
      return { ok: false, error: 'disarmed: expected { stage: whole number >= 1, at: string }' };
    batch.disarmed = { stage: d.stage, at: d.at };
  }
  return { ok: true, value: batch };
}
