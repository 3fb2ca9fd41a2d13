import { appendLine, readFileIfExists } from '../../activities/store/atomic-file';
import type { LedgerState, PowerLedger as PowerLedgerPort } from '../../activities/agent-activities';

/**
 * Remembers, on the agent's disk, which power cycles were begun and which finished, so an activity
 * retried after a worker crash never cycles a machine twice: a key is marked `begin` before the BMC
 * is told and `done` after it answered. A key left `in-doubt` by a crash is settled by the caller
 * from the machine's boot traffic.
 */
export class PowerLedger implements PowerLedgerPort {
  // The load is shared: two first calls at once must not each build a map and lose the other's keys.
  private entries: Promise<Map<string, LedgerState>> | undefined;

  constructor(private readonly file: string) {}

  private load(): Promise<Map<string, LedgerState>> {
    this.entries ??= this.read();
    return this.entries;
  }

  private async read(): Promise<Map<string, LedgerState>> {
    const text = (await readFileIfExists(this.file)) ?? '';
    const entries = new Map<string, LedgerState>();
    for (const line of text.split('\n')) {
      const [verb, key, at] = line.split(' ');
      if (!key) continue;
      if (verb === 'begin') entries.set(key, { state: 'in-doubt', since: at ?? new Date(0).toISOString() });
      if (verb === 'done') entries.set(key, { state: 'done' });
    }
    return entries;
  }

  // Synced: a `begin` lost with the page cache would let a retried activity cycle the machine again.
  private append(line: string): Promise<void> {
    return appendLine(this.file, line, { fsync: true });
  }

  async state(key: string): Promise<LedgerState> {
    return (await this.load()).get(key) ?? { state: 'new' };
  }

  async begin(key: string, at: string): Promise<void> {
    if (/\s/.test(key)) throw new Error('power ledger keys have no whitespace');
    await this.append(`begin ${key} ${at}`);
    (await this.load()).set(key, { state: 'in-doubt', since: at });
  }

  async done(key: string): Promise<void> {
    await this.append(`done ${key}`);
    (await this.load()).set(key, { state: 'done' });
  }
}
