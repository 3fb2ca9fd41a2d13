import path from 'node:path';
import { ModelSchema, type Model } from '../../schemas/model';
import { readFileIfExists, readJsonIfExists, writeFileAtomic } from './atomic-file';
import type { ActiveRollout, ModelStore } from './model-store';

interface Pointers {
  applied?: string;
  rollouts: Record<string, ActiveRollout>;
}

/** The embedded default store: one JSON file per revision under a directory, written atomically. */
export class FileModelStore implements ModelStore {
  private readonly cache = new Map<string, Model>();
  /** Pointer updates are read-modify-write: one at a time, or a concurrent one is lost. */
  private updating: Promise<void> = Promise.resolve();

  constructor(private readonly dir: string) {}

  private revisionFile(commit: string): string {
    if (!/^[0-9a-zA-Z._-]+$/.test(commit)) throw new Error(`invalid commit id ${commit}`);
    return path.join(this.dir, 'revisions', `${commit}.json`);
  }

  async putRevision(commit: string, model: Model): Promise<void> {
    await writeFileAtomic(this.revisionFile(commit), JSON.stringify(model));
    this.cache.set(commit, model);
  }

  async getRevision(commit: string): Promise<Model | undefined> {
    const cached = this.cache.get(commit);
    if (cached) return cached;
    const json = await readJsonIfExists(this.revisionFile(commit));
    if (json === undefined) return undefined;
    const model = ModelSchema.parse(json);
    this.cache.set(commit, model);
    return model;
  }

  private async pointers(): Promise<Pointers> {
    const text = await readFileIfExists(path.join(this.dir, 'pointers.json'));
    return text ? (JSON.parse(text) as Pointers) : { rollouts: {} };
  }

  private update(change: (p: Pointers) => void): Promise<void> {
    const run = async () => {
      const p = await this.pointers();
      change(p);
      await writeFileAtomic(path.join(this.dir, 'pointers.json'), JSON.stringify(p, null, 2));
    };
    this.updating = this.updating.then(run, run);
    return this.updating;
  }

  async getApplied(): Promise<string | undefined> {
    return (await this.pointers()).applied;
  }

  async setApplied(commit: string): Promise<void> {
    await this.update((p) => (p.applied = commit));
  }

  async getActiveRollout(site: string): Promise<ActiveRollout | undefined> {
    return (await this.pointers()).rollouts[site];
  }

  async setActiveRollout(site: string, rollout: ActiveRollout): Promise<void> {
    await this.update((p) => (p.rollouts[site] = rollout));
  }
}
