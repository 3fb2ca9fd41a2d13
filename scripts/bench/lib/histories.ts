// Every history a rollout wrote, read back from Temporal: the apply, each site rollout and each host
// workflow, every run of each (a site rollout continues as new; a run's last event names the next).
// From them: events in all, the largest single run, the largest payload of any event, and which
// worker process (its identity, `pid@host`) completed each workflow task and ran each activity.
import type { Client } from '@temporalio/client';
import proto from '@temporalio/proto';

type HistoryEvent = proto.temporal.api.history.v1.IHistoryEvent;
type Payload = proto.temporal.api.common.v1.IPayload;
const { EventType } = proto.temporal.api.enums.v1;

export interface RunRef {
  workflowId: string;
  runId: string;
}

export interface LargestPayload extends RunRef {
  bytes: number;
  eventId: number;
  eventType: string;
  /** Where in the event: e.g. `workflowExecutionSignaledEventAttributes.input`. */
  field: string;
}

/** What one worker process did, by its identity. */
export interface WorkerShare {
  workflowTasks: number;
  /** Activities by task queue (the server's and each agent's). */
  activities: Record<string, number>;
  localActivities: number;
}

export interface HistoryFigures {
  workflows: number;
  runs: number;
  events: number;
  /** Events per workflow kind (`apply`, `rollout`, `host`: the id's first segment), all runs. */
  eventsByKind: Record<string, number>;
  /** Runs of each site rollout. */
  rolloutRuns: number;
  largestRun: RunRef & { events: number };
  largestPayload: LargestPayload | undefined;
  workers: Record<string, WorkerShare>;
}

/** Bytes of one payload as Temporal stores it, near enough: data plus metadata keys and values. */
function payloadBytes(p: Payload): number {
  let bytes = p.data?.length ?? 0;
  for (const [k, v] of Object.entries(p.metadata ?? {})) bytes += k.length + (v?.length ?? 0);
  return bytes;
}

const isPayload = (v: object): v is Payload => 'data' in v && v.data instanceof Uint8Array;

/**
 * Each payload blob of an event with its field path: a `payloads` list counts as one blob (Temporal
 * limits the list, e.g. a workflow's input), a lone payload (memo, header, search attribute) as one.
 */
export function payloadBlobs(event: object): { field: string; bytes: number }[] {
  const found: { field: string; bytes: number }[] = [];
  const walk = (node: unknown, field: string) => {
    if (node === null || typeof node !== 'object' || node instanceof Uint8Array) return;
    if (isPayload(node)) {
      found.push({ field, bytes: payloadBytes(node) });
      return;
    }
    const list: unknown = (node as { payloads?: unknown }).payloads;
    if (Array.isArray(list)) {
      const payloads = list as Payload[];
      const bytes = payloads.reduce((sum, p) => sum + payloadBytes(p), 0);
      found.push({ field, bytes });
      return;
    }
    for (const [key, value] of Object.entries(node)) walk(value, field ? `${field}.${key}` : key);
  };
  walk(event, '');
  return found;
}

function share(workers: Record<string, WorkerShare>, identity: string | null | undefined): WorkerShare {
  const key = identity || '(unknown)';
  return (workers[key] ??= { workflowTasks: 0, activities: {}, localActivities: 0 });
}

/** Tallies one run's events into `figures`; returns the children it started and the next run. */
function tally(figures: HistoryFigures, ref: RunRef, events: HistoryEvent[]) {
  const children: RunRef[] = [];
  const queues = new Map<string, string>();
  const wftIdentity = new Map<string, string>();
  for (const e of events) {
    const id = String(e.eventId);
    for (const blob of payloadBlobs(e)) {
      if (blob.bytes > (figures.largestPayload?.bytes ?? -1))
        figures.largestPayload = {
          ...ref,
          ...blob,
          eventId: Number(e.eventId),
          eventType: EventType[e.eventType ?? 0] ?? String(e.eventType),
        };
    }
    const a = e.activityTaskScheduledEventAttributes;
    if (a) queues.set(id, a.taskQueue?.name ?? '');
    const started = e.activityTaskStartedEventAttributes;
    if (started) {
      const queue = queues.get(String(started.scheduledEventId)) ?? '';
      const activities = share(figures.workers, started.identity).activities;
      activities[queue] = (activities[queue] ?? 0) + 1;
    }
    const wft = e.workflowTaskCompletedEventAttributes;
    if (wft) {
      share(figures.workers, wft.identity).workflowTasks++;
      wftIdentity.set(id, wft.identity ?? '');
    }
    const marker = e.markerRecordedEventAttributes;
    if (marker?.markerName === 'core_local_activity')
      share(figures.workers, wftIdentity.get(String(marker.workflowTaskCompletedEventId))).localActivities++;
    const child = e.childWorkflowExecutionStartedEventAttributes?.workflowExecution;
    if (child?.workflowId && child.runId) children.push({ workflowId: child.workflowId, runId: child.runId });
  }
  const last = events[events.length - 1];
  const nextRunId =
    last?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ||
    last?.workflowExecutionFailedEventAttributes?.newExecutionRunId ||
    last?.workflowExecutionTimedOutEventAttributes?.newExecutionRunId ||
    undefined;
  return { children, nextRunId };
}

/**
 * Reads every run of every workflow reachable from `root` (its first run) through started children
 * and continued runs, `concurrency` histories at a time.
 */
export async function readHistories(
  client: Client,
  root: RunRef,
  concurrency = 16,
  /** Workflows that are no children of the root's tree: host workflows started by activity. */
  more: RunRef[] = [],
): Promise<HistoryFigures> {
  const figures: HistoryFigures = {
    workflows: 0,
    runs: 0,
    events: 0,
    eventsByKind: {},
    rolloutRuns: 0,
    largestRun: { workflowId: '', runId: '', events: 0 },
    largestPayload: undefined,
    workers: {},
  };
  const queue: (RunRef & { first: boolean })[] = [root, ...more].map((r) => ({ ...r, first: true }));
  const seen = new Set<string>();
  let inFlight = 0;
  const readOne = async (ref: RunRef & { first: boolean }) => {
    const history = await client.workflow.getHandle(ref.workflowId, ref.runId).fetchHistory();
    const events = history.events ?? [];
    const kind = ref.workflowId.split('/')[0] ?? '';
    figures.runs++;
    if (ref.first) figures.workflows++;
    if (kind === 'rollout') figures.rolloutRuns++;
    figures.events += events.length;
    figures.eventsByKind[kind] = (figures.eventsByKind[kind] ?? 0) + events.length;
    if (events.length > figures.largestRun.events)
      figures.largestRun = { workflowId: ref.workflowId, runId: ref.runId, events: events.length };
    const { children, nextRunId } = tally(figures, ref, events);
    for (const c of children) queue.push({ ...c, first: true });
    if (nextRunId) queue.push({ workflowId: ref.workflowId, runId: nextRunId, first: false });
  };
  const lanes = Array.from({ length: concurrency }, async () => {
    // Lanes idle while another lane's history may still add work: they wait for it to finish.
    for (;;) {
      const next = queue.shift();
      if (next) {
        const key = `${next.workflowId}@${next.runId}`;
        if (seen.has(key)) continue;
        seen.add(key);
        inFlight++;
        try {
          await readOne(next);
        } finally {
          inFlight--;
        }
      } else if (inFlight > 0) await new Promise((r) => setTimeout(r, 5));
      else return;
    }
  });
  await Promise.all(lanes);
  return figures;
}
