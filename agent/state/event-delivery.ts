import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type { Client } from '@temporalio/client';
import type { BootEventBatch, BootEventSink } from '../../schemas/rollout';
import { MAX_BATCH_EVENTS } from '../../schemas/rollout';
import type { ArmEntry } from '../../schemas/agent';
import type { BootEvent } from '../../schemas/rollout';
import { bootEventSignal, bootEventsSignal } from '../../workflows/messages';
import { appendJournal, readJournal, type BatchLine, type JournalEntry } from './event-journal';
import { batchRequestId, canonical, sendSignal } from './signal-delivery';

export interface Logger {
  info(msg: string, fields?: object): void;
  warn(msg: string, fields?: object): void;
}

export interface EventSinkOptions {
  client: Client;
  netboot: {
    lookup(mac: string): Promise<ArmEntry | undefined>;
    /** Disarms the MAC if that workflow armed it: the agent does it itself at a last checkpoint. */
    disarm?(mac: string, workflowId: string): Promise<boolean>;
  };
  logger: Logger;
  /**
   * The on-disk buffer (JSON lines): an event is appended before it is delivered and acknowledged
   * after, so events emitted while Temporal is down survive an agent restart. Without it, events
   * wait in memory only.
   */
  journal?: string;
  retryMs?: number;
  /**
   * How long a host's first event waits for more of the same arming before they go as one
   * `boot-events` signal (a real boot's DHCP, iPXE script and kernel come within a second or two;
   * each signal is four history events). A checkpoint goes at once: the workflow waits for it.
   */
  batchWindowMs?: number;
}

type Entry = JournalEntry;

/** A host's events of one arming, gathered until the window ends or its checkpoint comes. */
interface OpenBatch {
  mac: string;
  armed: ArmEntry;
  entries: Entry[];
  timer: NodeJS.Timeout;
  /** Resolves once the batch is handed to its MAC's delivery chain (or dropped by close). */
  done: Promise<void>;
  release: () => void;
}

/**
 * A host's real boot sends each kind of event a few times per stage (PXE and iPXE both ask DHCP);
 * a workflow needs the first. Repeats of the same kind, stage and arming within this window are
 * dropped and counted: a flood of spoofed packets from an armed MAC would otherwise become one
 * signal each and push the host workflow's history toward Temporal's 51,200-event limit.
 */
export const REPEAT_WINDOW_MS = 30_000;
/** Keys remembered for the window; beyond it the oldest go first (memory stays bounded). */
const MAX_REPEAT_KEYS = 50_000;
export const DEFAULT_BATCH_WINDOW_MS = 2_000;

/**
 * Delivers boot events of armed hosts to their reprovision workflow, in order, exactly once,
 * retrying while Temporal is unreachable: a host's events of one arming go as `boot-events`
 * batches where the arming asks for them, else one `boot-event` signal each. Events of unarmed MACs
 * are only logged.
 */
export class SignalingEventSink implements BootEventSink {
  /** One chain per MAC: a host's events arrive in order, hosts do not wait for each other. */
  private readonly queues = new Map<string, Promise<void>>();
  private readonly open = new Map<string, OpenBatch>();
  private pending = 0;
  private seq = 0;
  private readonly client: Client;
  private readonly netboot: EventSinkOptions['netboot'];
  private readonly logger: Logger;
  private readonly retryMs: number;
  private readonly windowMs: number;
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
    this.windowMs = options.batchWindowMs ?? DEFAULT_BATCH_WINDOW_MS;
    this.journal = options.journal;
    if (this.journal) this.replay(this.journal);
  }

  /** Re-sends what a previous run buffered and did not see delivered, in the order it was emitted. */
  private replay(file: string): void {
    const owed = readJournal(file, (msg, fields) => this.logger.warn(msg, fields));
    this.seq = owed.seq;
    const items = [
      ...owed.loose.map((entry) => ({ first: entry.seq, entry, batch: undefined })),
      ...owed.batches.map((batch) => ({ first: batch.entries[0]?.seq ?? 0, entry: undefined, batch })),
    ].sort((a, b) => a.first - b.first);
    const count = owed.loose.length + owed.batches.reduce((n, b) => n + b.entries.length, 0);
    if (count > 0) this.logger.info('replaying buffered boot events', { count });
    for (const { entry, batch } of items) {
      if (entry) this.enqueue(entry);
      else if (batch) {
        // Formed before the restart: sent as it was, to its workflow, even if the host is disarmed now.
        this.pending += batch.entries.length;
        const mac = batch.entries[0]?.event.mac ?? '';
        this.chain(mac, () => this.sendBatch(mac, batch.line, batch.entries));
      }
    }
  }

  emit(event: BootEvent): void {
    // Reported by the agent the host chose (schemas/rollout.ts `reported`), or by none: not journaled.
    if (event.reported === false) return;
    const entry: Entry = { seq: ++this.seq, id: randomUUID(), event };
    // Not fsynced: this runs on the packet path, a process crash keeps the page cache, and an event
    // lost to a power cut of the agent only makes its step time out and be retried.
    appendJournal(this.journal, entry);
    this.enqueue(entry);
  }

  /** Runs `task` after the MAC's earlier ones; a failure is logged and settles nothing more. */
  private chain(mac: string, task: () => Promise<void>): void {
    const next = (this.queues.get(mac) ?? Promise.resolve())
      .then(task)
      .catch((err: unknown) => this.logger.warn('boot event not delivered', { error: String(err) }))
      .finally(() => {
        if (this.queues.get(mac) === next) this.queues.delete(mac);
      });
    this.queues.set(mac, next);
  }

  private enqueue(entry: Entry): void {
    this.pending += 1;
    const mac = entry.event.mac;
    // Armed or not is decided now: a later disarm and re-arm must not get this boot's events.
    const armed = this.netboot.lookup(mac);
    armed.catch(() => undefined);
    this.chain(mac, async () => {
      let arm: ArmEntry | undefined;
      try {
        arm = await armed;
      } catch (err) {
        this.logger.warn('boot event not delivered: arm state unreadable', { mac, error: String(err) });
        return this.settle([entry], true);
      }
      if (this.isRepeat(entry.event, arm)) return this.settle([entry], true);
      if (!arm) {
        this.logger.info('boot event of an unarmed host', { ...entry.event });
        return this.settle([entry], true);
      }
      if (arm.batches) return this.addToBatch(entry, arm);
      const event = canonical(entry.event, arm.stage);
      const sent = await this.signal(arm.workflowId, bootEventSignal.name, entry.id, event, event.kind);
      this.settle([entry], sent);
    });
  }

  private addToBatch(entry: Entry, armed: ArmEntry): void {
    if (this.closed) return this.settle([entry], false);
    const { mac } = entry.event;
    const current = this.open.get(mac);
    if (current && (current.armed.workflowId !== armed.workflowId || current.armed.armedAt !== armed.armedAt))
      this.flush(current);
    let batch = this.open.get(mac);
    if (!batch) {
      let release = () => undefined as void;
      const done = new Promise<void>((resolve) => (release = resolve));
      const timer = setTimeout(() => this.flush(this.open.get(mac)), this.windowMs);
      batch = { mac, armed, entries: [], timer, done, release };
      this.open.set(mac, batch);
    }
    batch.entries.push(entry);
    if (entry.event.kind === 'checkpoint' || batch.entries.length >= MAX_BATCH_EVENTS) this.flush(batch);
  }

  /** Closes a batch: journaled as formed (with the intent to disarm), then sent in its MAC's order. */
  private flush(batch: OpenBatch | undefined): void {
    if (!batch || this.open.get(batch.mac) !== batch) return;
    clearTimeout(batch.timer);
    this.open.delete(batch.mac);
    batch.release();
    if (this.closed) return this.settle(batch.entries, false);
    const { armed, entries, mac } = batch;
    // The checkpoint's own time: the batch must read the same whichever agent or run sends it.
    const checkpoint = armed.disarmAtCheckpoint && entries.find((e) => this.isCheckpointOf(e.event, armed));
    const line: BatchLine = {
      batch: entries.map((e) => e.seq),
      workflowId: armed.workflowId,
      stage: armed.stage,
      ...(checkpoint ? { disarm: { stage: armed.stage, at: checkpoint.event.at } } : {}),
    };
    appendJournal(this.journal, line);
    this.chain(mac, () => this.sendBatch(mac, line, entries));
  }

  private isCheckpointOf(event: BootEvent, armed: ArmEntry): boolean {
    return event.kind === 'checkpoint' && (event.stage ?? armed.stage) === armed.stage;
  }

  /** Disarms first where the line asks to (its outcome journaled before any send), then signals. */
  private async sendBatch(mac: string, line: BatchLine, entries: Entry[]): Promise<void> {
    let final = line;
    if (!line.final) {
      const disarmed = line.disarm && (await this.disarm(mac, line.workflowId)) ? line.disarm : undefined;
      final = { batch: line.batch, workflowId: line.workflowId, stage: line.stage, final: true };
      if (disarmed) final.disarmed = disarmed;
      appendJournal(this.journal, final);
    }
    const batch: BootEventBatch = {
      events: entries.map((e) => canonical(e.event, final.stage)),
      ...(final.disarmed ? { disarmed: final.disarmed } : {}),
    };
    const id = batchRequestId(final.workflowId, batch);
    const kinds = batch.events.map((e) => e.kind).join(',');
    this.settle(entries, await this.signal(final.workflowId, bootEventsSignal.name, id, batch, kinds));
  }

  /** Whether the arming is gone (disarmed now, or before): a failure leaves it to the workflow. */
  private async disarm(mac: string, workflowId: string): Promise<boolean> {
    if (!this.netboot.disarm) return false;
    try {
      await this.netboot.disarm(mac, workflowId);
      return true;
    } catch (err) {
      this.logger.warn('could not disarm at the checkpoint: the workflow will', { mac, error: String(err) });
      return false;
    }
  }

  /** Done with entries: acknowledged on disk when delivered (or dropped), else left owed. */
  private settle(entries: Entry[], acknowledged: boolean): void {
    if (acknowledged) for (const e of entries) appendJournal(this.journal, { ack: e.seq });
    this.pending -= entries.length;
    // When nothing is owed any more, the journal starts over instead of growing.
    if (this.pending === 0 && !this.closed && this.journal) writeFileSync(this.journal, '');
  }

  /** Whether the same kind of event for the same arming (or unarmed MAC) passed within the window. */
  private isRepeat(event: BootEvent, armed: ArmEntry | undefined): boolean {
    const arming = armed ? `${armed.workflowId}@${armed.armedAt}` : 'unarmed';
    // A deploy's progress reports are repeats of one another; its result is not one of them.
    const kind =
      event.kind === 'image' && !event.detail?.startsWith('written ') ? 'image-result' : event.kind;
    const key = `${arming}|${event.mac}|${kind}|${event.stage ?? armed?.stage ?? ''}`;
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

  /** Sends a signal until it is recorded or cannot be; false when the sink was closed first. */
  private signal(workflowId: string, name: string, requestId: string, arg: unknown, kinds: string) {
    const call = { workflowId, name, requestId, arg, kinds };
    return sendSignal(this.client, call, {
      retryMs: this.retryMs,
      logger: this.logger,
      closed: () => this.closed,
    });
  }

  /**
   * Stops delivering: what is still owed stays in the journal for the next start. Resolves when no
   * call is in flight any more (the connection can be closed then).
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const batch of [...this.open.values()]) this.flush(batch);
    await this.drain();
  }

  /** Resolves when every event emitted so far was delivered or dropped. */
  async drain(): Promise<void> {
    while (this.pending > 0)
      await Promise.all([...this.queues.values(), ...[...this.open.values()].map((b) => b.done)]);
  }

  /** Events buffered and not yet delivered. */
  get backlog(): number {
    return this.pending;
  }
}
