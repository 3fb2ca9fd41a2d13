import { randomUUID } from 'node:crypto';
import { appendFileSync, writeFileSync } from 'node:fs';
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { BootEventSink } from '../../schemas/rollout';
import type { ArmEntry } from '../../schemas/agent';
import type { BootEvent } from '../../schemas/rollout';
import { bootEventSignal } from '../../workflows/messages';
import { readFileIfExistsSync, writeFileAtomicSync } from '../../activities/store/atomic-file';

export interface Logger {
  info(msg: string, fields?: object): void;
  warn(msg: string, fields?: object): void;
}

export interface EventSinkOptions {
  client: Client;
  netboot: { lookup(mac: string): Promise<ArmEntry | undefined> };
  logger: Logger;
  /**
   * The on-disk buffer (JSON lines): an event is appended before it is delivered and acknowledged
   * after, so events emitted while Temporal is down survive an agent restart. Without it, events
   * wait in memory only.
   */
  journal?: string;
  retryMs?: number;
}

/** One buffered event: `id` is the signal's request id, which Temporal de-duplicates on. */
interface Entry {
  seq: number;
  id: string;
  event: BootEvent;
}
type JournalLine = Entry | { ack: number };

/**
 * A host's real boot sends each kind of event a few times per stage (PXE and iPXE both ask DHCP);
 * a workflow needs the first. Repeats of the same kind, stage and arming within this window are
 * dropped and counted: a flood of spoofed packets from an armed MAC would otherwise become one
 * signal each and push the host workflow's history toward Temporal's 51,200-event limit.
 */
export const REPEAT_WINDOW_MS = 30_000;
/** Keys remembered for the window; beyond it the oldest go first (memory stays bounded). */
const MAX_REPEAT_KEYS = 50_000;

// gRPC status codes: the workflow is gone, or the request can never succeed.
const NOT_FOUND = 5;
const INVALID_ARGUMENT = 3;

/**
 * Delivers boot events of armed hosts to their reprovision workflow as `boot-event` signals, in
 * order, exactly once, retrying while Temporal is unreachable. Events of unarmed MACs are only logged.
 */
export class SignalingEventSink implements BootEventSink {
  /** One chain per MAC: a host's events arrive in order, hosts do not wait for each other. */
  private readonly queues = new Map<string, Promise<void>>();
  private pending = 0;
  private seq = 0;
  private readonly client: Client;
  private readonly netboot: EventSinkOptions['netboot'];
  private readonly logger: Logger;
  private readonly retryMs: number;
  private readonly journal: string | undefined;
  private closed = false;
  private readonly lastDelivered = new Map<string, number>();
  /** Events dropped as repeats (see REPEAT_WINDOW_MS), for the logs and tests. */
  repeatsDropped = 0;

  constructor(options: EventSinkOptions) {
    this.client = options.client;
    this.netboot = options.netboot;
    this.logger = options.logger;
    this.retryMs = options.retryMs ?? 1000;
    this.journal = options.journal;
    if (this.journal) this.replay(this.journal);
  }

  /** Re-sends what a previous run buffered and did not see delivered, in the order it was emitted. */
  private replay(file: string): void {
    const text = readFileIfExistsSync(file) ?? '';
    const open = new Map<number, Entry>();
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      let parsed: JournalLine;
      try {
        parsed = JSON.parse(line) as JournalLine;
      } catch {
        // A line torn by a crash in the middle of a write: that event was never emitted in full.
        this.logger.warn('boot event journal: torn line skipped', { file });
        continue;
      }
      if ('ack' in parsed) open.delete(parsed.ack);
      else open.set(parsed.seq, parsed);
      this.seq = Math.max(this.seq, 'ack' in parsed ? parsed.ack : parsed.seq);
    }
    const entries = [...open.values()].sort((a, b) => a.seq - b.seq);
    // Compacted: only what is still owed stays on disk.
    writeFileAtomicSync(file, entries.map((e) => `${JSON.stringify(e)}\n`).join(''));
    if (entries.length > 0) this.logger.info('replaying buffered boot events', { count: entries.length });
    for (const entry of entries) this.enqueue(entry);
  }

  emit(event: BootEvent): void {
    const entry: Entry = { seq: ++this.seq, id: randomUUID(), event };
    // Not fsynced: this runs on the packet path, a process crash keeps the page cache, and an event
    // lost to a power cut of the agent only makes its step time out and be retried.
    if (this.journal) appendFileSync(this.journal, `${JSON.stringify(entry)}\n`);
    this.enqueue(entry);
  }

  private enqueue(entry: Entry): void {
    this.pending += 1;
    const mac = entry.event.mac;
    // Armed or not is decided now: a later disarm and re-arm must not get this boot's events.
    const armed = this.netboot.lookup(mac);
    armed.catch(() => undefined);
    const next = (this.queues.get(mac) ?? Promise.resolve())
      .then(async () => {
        if (await this.deliver(entry, await armed)) this.ack(entry.seq);
      })
      .catch((err: unknown) => {
        this.logger.warn('boot event not delivered', { error: String(err) });
        this.ack(entry.seq);
      })
      .finally(() => {
        this.pending -= 1;
        if (this.pending === 0 && !this.closed && this.journal) writeFileSync(this.journal, '');
        if (this.queues.get(mac) === next) this.queues.delete(mac);
      });
    this.queues.set(mac, next);
  }

  // When nothing is owed any more (see `enqueue`), the journal starts over instead of growing.
  private ack(seq: number): void {
    if (this.journal) appendFileSync(this.journal, `${JSON.stringify({ ack: seq })}\n`);
  }

  /** Whether the same kind of event for the same arming (or unarmed MAC) passed within the window. */
  private isRepeat(event: BootEvent, armed: ArmEntry | undefined): boolean {
    const arming = armed ? `${armed.workflowId}@${armed.armedAt}` : 'unarmed';
    const key = `${arming}|${event.mac}|${event.kind}|${event.stage ?? armed?.stage ?? ''}`;
    const now = Date.now();
    const last = this.lastDelivered.get(key);
    if (last !== undefined && now - last < REPEAT_WINDOW_MS) {
      this.repeatsDropped += 1;
      if (this.repeatsDropped % 1000 === 1)
        this.logger.warn('repeated boot events dropped', { total: this.repeatsDropped, mac: event.mac });
      return true;
    }
    this.lastDelivered.delete(key);
    this.lastDelivered.set(key, now);
    if (this.lastDelivered.size > MAX_REPEAT_KEYS) {
      const oldest = this.lastDelivered.keys().next().value;
      if (oldest !== undefined) this.lastDelivered.delete(oldest);
    }
    return false;
  }

  /** Delivers an entry; false when the sink was closed first (the entry stays owed on disk). */
  private async deliver(entry: Entry, armed: ArmEntry | undefined): Promise<boolean> {
    const { event } = entry;
    if (this.isRepeat(event, armed)) return true;
    if (!armed) {
      this.logger.info('boot event of an unarmed host', { ...event });
      return true;
    }
    const withStage: BootEvent = { ...event, stage: event.stage ?? armed.stage };
    for (let attempt = 1; ; attempt++) {
      if (this.closed) return false;
      try {
        // The raw call, for its request id: a signal re-sent after a crash between delivery and
        // acknowledgement is recognised by the server and not added to the history again.
        await this.client.workflowService.signalWorkflowExecution({
          namespace: this.client.options.namespace,
          identity: this.client.options.identity,
          workflowExecution: { workflowId: armed.workflowId },
          signalName: bootEventSignal.name,
          requestId: entry.id,
          input: { payloads: [defaultPayloadConverter.toPayload(withStage)] },
        });
        return true;
      } catch (err) {
        const code = (err as { code?: number }).code;
        const message = (err as Error).message;
        if (code === NOT_FOUND || code === INVALID_ARGUMENT || /not found|already completed/i.test(message)) {
          this.logger.warn('boot event for a closed workflow dropped', {
            workflowId: armed.workflowId,
            kind: event.kind,
            error: message,
          });
          return true;
        }
        if (attempt === 1) this.logger.warn('boot event delivery failing, retrying', { error: message });
        await new Promise((resolve) => setTimeout(resolve, this.retryMs));
      }
    }
  }

  /**
   * Stops delivering: what is still owed stays in the journal for the next start. Resolves when no
   * call is in flight any more (the connection can be closed then).
   */
  async close(): Promise<void> {
    this.closed = true;
    await this.drain();
  }

  /** Resolves when every event emitted so far was delivered or dropped. */
  async drain(): Promise<void> {
    while (this.pending > 0) await Promise.all(this.queues.values());
  }

  /** Events buffered and not yet delivered. */
  get backlog(): number {
    return this.pending;
  }
}
