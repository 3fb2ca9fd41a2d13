import type { Model } from '../../schemas/model';

export interface ActiveRollout {
  workflowId: string;
  commit: string;
}

/** Model revisions (one per SoT commit) and the few pointers the orchestration keeps. */
export interface ModelStore {
  putRevision(commit: string, model: Model): Promise<void>;
  getRevision(commit: string): Promise<Model | undefined>;
  /** The last commit whose rollouts were started. */
  getApplied(): Promise<string | undefined>;
  setApplied(commit: string): Promise<void>;
  /** The rollout workflow last started for a site, and its commit. */
  getActiveRollout(site: string): Promise<ActiveRollout | undefined>;
  setActiveRollout(site: string, rollout: ActiveRollout): Promise<void>;
}
