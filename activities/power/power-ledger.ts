import { appendFile, mkdir, open, readFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * Remembers which power cycles were issued, on disk, so that an activity retried after a worker crash
 * does not cycle a machine a second time. A key is claimed before the BMC is told to cycle: at most
 * once; a cycle lost in a crash shows up as a boot-event timeout and an operator's retry.
 */
export class PowerLedger {
  private keys: Set<string> | undefined;

  constructor(private readonly file: string) {}

  private async load(): Promise<Set<string>> {
    if (this.keys) return this.keys;
    let text = '';
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    this.keys = new Set(text.split('\n').filter(Boolean));
    return this.keys;
  }

  /** True the first time a key is claimed, on this agent, ever; false afterwards. */
  async claim(key: string): Promise<boolean> {
    if (key.includes('\n')) throw new Error('power ledger keys are single lines');
    const keys = await this.load();
    if (keys.has(key)) return false;
    await mkdir(path.dirname(this.file), { recursive: true });
    await appendFile(this.file, `${key}\n`);
    const handle = await open(this.file, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    keys.add(key);
    return true;
  }
}
