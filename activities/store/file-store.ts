import path from 'node:path';
import { APPLIED_HISTORY_LIMIT, type AppliedEntry } from '../../schemas/applied';
import { ModelSchema, type Model } from '../../schemas/model';
import { readFileIfExists, readJsonIfExists, writeFileAtomic } from './atomic-file';
import { checkPlanKey, SitePlanSchema, type SitePlan } from '../../schemas/plan';
import type { ActiveRollout, ModelStore } from './model-store';
import { own } from '../../schemas/common';

interface Pointers {
  applied?: string;
  rollouts: Record<string, ActiveRollout>;
  /** Newest first; absent in files written before the history was kept. */
  history?: AppliedEntry[];
}

/**
 * Pointer updates are read-modify-write: one at a time per directory, or a concurrent one is lost
 * (and two compare-and-sets both win). Keyed by directory, so every instance over it takes turns.
 */
const updating = new Map<string, Promise<void>>();

/**
 * The embedded default store: one JSON file per revision under a directory, written atomically.
 * Pointer updates are serialized in this process, so one server owns a directory (HA uses etcd).
 */
export class FileModelStore implements ModelStore {
  private readonly cache = new Map<string, Model>();

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

  private planFile(key: string): string {
    return path.join(this.dir, 'plans', ...checkPlanKey(key).split('/')) + '.json';
  }

  async putPlan(key: string, plan: SitePlan): Promise<void> {
    await writeFileAtomic(this.planFile(key), JSON.stringify(plan));
  }

  async getPlan(key: string): Promise<SitePlan | undefined> {
    const json = await readJsonIfExists(this.planFile(key));
    return json === undefined ? undefined : SitePlanSchema.parse(json);
  }

  private async pointers(): Promise<Pointers> {
    const text = await readFileIfExists(path.join(this.dir, 'pointers.json'));
    return text ? (JSON.parse(text) as Pointers) : { rollouts: {} };
  }

  private update<T>(change: (p: Pointers) => T): Promise<T> {
    let result: T;
    const run = async () => {
      const p = await this.pointers();
      result = change(p);
      await writeFileAtomic(path.join(this.dir, 'pointers.json'), JSON.stringify(p, null, 2));
    };
    const key = path.resolve(this.dir);
    const done = (updating.get(key) ?? Promise.resolve()).then(run, run);
    updating.set(key, done);
    const forget = () => void (updating.get(key) === done && updating.delete(key));
    void done.then(forget, forget);
    return done.then(() => result);
  }

  async getApplied(): Promise<string | undefined> {
    return (await this.pointers()).applied;
  }

  async setApplied(commit: string): Promise<void> {
    await this.update((p) => (p.applied = commit));
  }

  async advanceApplied(expected: string | undefined, entry: AppliedEntry): Promise<boolean> {
    return this.update((p) => {
      if (p.applied !== expected) return false;
      p.applied = entry.commit;
      p.history = [entry, ...(p.history ?? [])].slice(0, APPLIED_HISTORY_LIMIT);
      return true;
    });
  }

  async getAppliedHistory(): Promise<AppliedEntry[]> {
    return (await this.pointers()).history ?? [];
  }

  async getActiveRollout(site: string): Promise<ActiveRollout | undefined> {
    return own((await this.pointers()).rollouts, site);
  }

  async setActiveRollout(site: string, rollout: ActiveRollout): Promise<void> {
    // defineProperty: a site named __proto__ would otherwise replace the object's prototype.
    await this.update(
      (p) =>
        void Object.defineProperty(p.rollouts, site, {
          value: rollout,
          enumerable: true,
          writable: true,
          configurable: true,
        }),
    );
  }
}
