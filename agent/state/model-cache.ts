// The agent's copy of its site's models, on its own disk. The protocol servers read only this, so
// an agent restarted while the server (or the store) is unreachable still serves its last model.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { ModelSchema, type Model } from '../../schemas/model';
import { readFileIfExists, readJsonIfExists, writeFileAtomic } from '../../activities/store/atomic-file';
import type { ModelSource } from '../http/deps';
import type { ModelFeed, SiteRevision } from '../feed/model-feed';
import { own } from '../../schemas/common';

export interface CacheLogger {
  info(msg: string, fields?: object): void;
  warn(msg: string, fields?: object): void;
}

export interface ModelCacheOptions {
  /** Models are kept under `<stateDir>/models/<commit>.json`, the current one named by `current`. */
  stateDir: string;
  site: string;
  /** Where new revisions come from; without one the cache serves what it has on disk. */
  feed?: ModelFeed;
  /** How often the feed is asked for the applied revision (default 10 s). */
  pollMs?: number;
  logger: CacheLogger;
}

export type RevisionListener = (revision: SiteRevision) => void;

const COMMIT_RE = /^[0-9a-zA-Z._-]+$/;

const describe = (err: unknown): string => (err instanceof Error ? err.message : String(err));

export class ModelCache implements ModelSource {
  private readonly dir: string;
  private readonly models = new Map<string, Model>();
  private readonly listeners = new Set<RevisionListener>();
  private currentRev: SiteRevision | undefined;
  private feedDown = false;
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private waiters: ((rev: SiteRevision) => void)[] = [];

  private constructor(private readonly opts: ModelCacheOptions) {
    this.dir = path.join(opts.stateDir, 'models');
  }

  /** Opens the cache and loads the current revision from disk (if any); polls nothing yet. */
  static async open(opts: ModelCacheOptions): Promise<ModelCache> {
    const cache = new ModelCache(opts);
    await mkdir(cache.dir, { recursive: true });
    const pointer = (await readFileIfExists(path.join(cache.dir, 'current')))?.trim();
    if (pointer) {
      const model = await cache.fromDisk(pointer).catch((err: unknown) => {
        opts.logger.warn('cached model unreadable; waiting for the feed', {
          commit: pointer,
          error: describe(err),
        });
        return undefined;
      });
      if (model) {
        cache.currentRev = { commit: pointer, model };
        opts.logger.info('serving cached model', { commit: pointer });
      }
    }
    return cache;
  }

  private file(commit: string): string {
    if (!COMMIT_RE.test(commit)) throw new Error(`invalid commit id ${JSON.stringify(commit)}`);
    return path.join(this.dir, `${commit}.json`);
  }

  private async fromDisk(commit: string): Promise<Model | undefined> {
    const json = await readJsonIfExists(this.file(commit));
    if (json === undefined) return undefined;
    const model = ModelSchema.parse(json);
    this.models.set(commit, model);
    return model;
  }

  private async store(rev: SiteRevision): Promise<void> {
    if (!own(rev.model.sites, this.opts.site))
      throw new Error(`revision ${rev.commit} has no site ${this.opts.site}`);
    const file = this.file(rev.commit);
    if (!this.models.has(rev.commit) && (await readFileIfExists(file)) === undefined)
      await writeFileAtomic(file, JSON.stringify(rev.model));
    this.models.set(rev.commit, rev.model);
  }

  /** The newest model; throws before the first one arrived (see `ready`). */
  current(): Model {
    if (!this.currentRev) throw new Error(`no model for site ${this.opts.site} yet`);
    return this.currentRev.model;
  }

  currentRevision(): SiteRevision | undefined {
    return this.currentRev;
  }

  /** A commit's model, from memory, disk, or (kept from then on) the feed. */
  async forCommit(commit: string): Promise<Model | undefined> {
    if (!COMMIT_RE.test(commit)) return undefined;
    const known = this.models.get(commit) ?? (await this.fromDisk(commit).catch(() => undefined));
    if (known) return known;
    if (!this.opts.feed) return undefined;
    try {
      const rev = await this.opts.feed.revision(commit);
      if (!rev) return undefined;
      await this.store(rev);
      return rev.model;
    } catch (err) {
      this.feedFailed(err);
      return undefined;
    }
  }

  /** Resolves with the current revision as soon as there is one. */
  ready(): Promise<SiteRevision> {
    if (this.currentRev) return Promise.resolve(this.currentRev);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Called with every new current revision; returns the unsubscribe function. */
  onChange(listener: RevisionListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private feedFailed(err: unknown): void {
    // One line per outage: a feed down for an hour must not fill the log.
    if (this.feedDown) return;
    this.feedDown = true;
    this.opts.logger.warn('model feed unreachable; serving the cached model', {
      commit: this.currentRev?.commit,
      error: describe(err),
    });
  }

  /** Asks the feed once for the applied revision; a failure keeps the cached one. */
  refresh(): Promise<void> {
    this.polling ??= this.poll().finally(() => (this.polling = undefined));
    return this.polling;
  }

  private async poll(): Promise<void> {
    const feed = this.opts.feed;
    if (!feed) return;
    let rev: SiteRevision | undefined;
    try {
      rev = await feed.current();
      if (rev && rev.commit !== this.currentRev?.commit) await this.store(rev);
    } catch (err) {
      this.feedFailed(err);
      return;
    }
    if (this.feedDown) {
      this.feedDown = false;
      this.opts.logger.info('model feed reachable again', { commit: rev?.commit });
    }
    if (!rev || rev.commit === this.currentRev?.commit) return;
    await writeFileAtomic(path.join(this.dir, 'current'), `${rev.commit}\n`);
    const previous = this.currentRev?.commit;
    this.currentRev = rev;
    this.opts.logger.info('model revision changed', { commit: rev.commit, previous });
    for (const waiter of this.waiters.splice(0)) waiter(rev);
    for (const listener of this.listeners) {
      try {
        listener(rev);
      } catch (err) {
        this.opts.logger.warn('model listener failed', { error: describe(err) });
      }
    }
  }

  /** Polls now and then every `pollMs` until `stop`. */
  start(): void {
    if (this.timer || !this.opts.feed) return;
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.opts.pollMs ?? 10_000);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.polling;
  }
}
