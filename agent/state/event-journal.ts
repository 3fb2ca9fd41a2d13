import { appendFileSync } from 'node:fs';
import type { BootEvent } from '../../schemas/rollout';
import { readFileIfExistsSync, writeFileAtomicSync } from '../../activities/store/atomic-file';

/** One buffered event: `id` is the request id of its own `boot-event` signal (workflows without batches). */
export interface JournalEntry {
  seq: number;
  id: string;
  event: BootEvent;
}

/**
 * A batch as it was formed, written before it is sent, so a restart re-sends the same events to the
 * same workflow under the same request id, even once the host is disarmed. `disarm` is the intent to
 * disarm at the checkpoint; a line with `final` holds the outcome and comes before any send.
 */
export interface BatchLine {
  batch: number[];
  workflowId: string;
  /** The arming's stage, for events that do not say theirs. */
  stage?: number;
  disarm?: { stage: number; at: string };
  disarmed?: { stage: number; at: string };
  final?: boolean;
}

type JournalLine = JournalEntry | { ack: number } | BatchLine;

export interface Owed {
  /** Entries in no batch, in the order they were emitted. */
  loose: JournalEntry[];
  /** Batches whose entries are all still owed, each with its entries, in order. */
  batches: { line: BatchLine; entries: JournalEntry[] }[];
  /** The highest sequence number seen. */
  seq: number;
}

/** What a previous run left owed in the journal; the file is compacted to exactly that. */
export function readJournal(file: string, warn: (msg: string, fields?: object) => void): Owed {
  const open = new Map<number, JournalEntry>();
  const batchOf = new Map<number, BatchLine>();
  let seq = 0;
  for (const text of (readFileIfExistsSync(file) ?? '').split('\n')) {
    if (!text.trim()) continue;
    let line: JournalLine;
    try {
      line = JSON.parse(text) as JournalLine;
    } catch {
      // A line torn by a crash in the middle of a write: that event or batch was never sent.
      warn('boot event journal: torn line skipped', { file });
      continue;
    }
    if ('ack' in line) {
      open.delete(line.ack);
      seq = Math.max(seq, line.ack);
    } else if ('batch' in line) {
      // A later line of the same batch (its outcome) replaces the intent.
      for (const s of line.batch) batchOf.set(s, line);
    } else {
      open.set(line.seq, line);
      seq = Math.max(seq, line.seq);
    }
  }
  const entries = [...open.values()].sort((a, b) => a.seq - b.seq);
  const owed: Owed = { loose: [], batches: [], seq };
  const taken = new Set<BatchLine>();
  for (const entry of entries) {
    const line = batchOf.get(entry.seq);
    if (!line) {
      owed.loose.push(entry);
    } else if (!taken.has(line)) {
      taken.add(line);
      const members = line.batch.map((s) => open.get(s));
      // A batch partly acknowledged was sent: its remaining entries were sent with it.
      if (members.every((m) => m !== undefined)) owed.batches.push({ line, entries: members });
    }
  }
  const kept = [...owed.loose, ...owed.batches.flatMap((b) => b.entries), ...owed.batches.map((b) => b.line)];
  writeFileAtomicSync(file, kept.map((l) => `${JSON.stringify(l)}\n`).join(''));
  return owed;
}

/** Appends a line; not fsynced (see SignalingEventSink.emit). */
export function appendJournal(file: string | undefined, line: JournalLine): void {
  if (file) appendFileSync(file, `${JSON.stringify(line)}\n`);
}
