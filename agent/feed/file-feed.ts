// A model feed for an agent on the same machine as its server (standalone): it reads the server's
// file model store directly, the applied revision cut down to the agent's site.
import { stat } from 'node:fs/promises';
import { FileModelStore } from '../../activities/store/file-store';
import { modelForSite } from '../../schemas/model';
import type { ModelFeed, SiteRevision } from './model-feed';

export function createFileFeed(dir: string, site: string): ModelFeed {
  const store = new FileModelStore(dir);
  const revision = async (commit: string): Promise<SiteRevision | undefined> => {
    const model = await store.getRevision(commit);
    const own = model && modelForSite(model, site);
    return own ? { commit, model: own } : undefined;
  };
  return {
    async current() {
      // A missing directory is an unreachable store (unmounted, wrong path), not "nothing applied".
      const info = await stat(dir).catch(() => undefined);
      if (!info?.isDirectory()) throw new Error(`model store ${dir} not found`);
      const applied = await store.getApplied();
      return applied ? revision(applied) : undefined;
    },
    async revision(commit) {
      return revision(commit);
    },
  };
}
