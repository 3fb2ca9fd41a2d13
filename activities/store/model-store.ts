import type { AppliedEntry } from '../../schemas/applied';
import type { Model } from '../../schemas/model';
import type { SitePlan } from '../../schemas/plan';

export interface ActiveRollout {
  workflowId: string;
  commit: string;
}

/** Model revisions (one per SoT commit) and the few pointers the orchestration keeps. */
export interface ModelStore {
  putRevision(commit: string, model: Model): Promise<void>;
  getRevision(commit: string): Promise<Model | undefined>;
  /** A site's rollout plan under its key (`planKey`): written once by the apply, read in pages by the rollout. */
  putPlan(key: string, plan: SitePlan): Promise<void>;
  getPlan(key: string): Promise<SitePlan | undefined>;
  /** The last commit an apply accepted: its rollouts start (or started) from here on. */
  getApplied(): Promise<string | undefined>;
  /** Moves the pointer unconditionally, without history (`vaquero migrate`, applies of older releases). */
  setApplied(commit: string): Promise<void>;
  /**
   * Compare-and-set: moves the pointer to `entry.commit` and records the entry only while the pointer
   * is still `expected` (undefined: nothing applied); false when another apply moved it first.
   */
  advanceApplied(expected: string | undefined, entry: AppliedEntry): Promise<boolean>;
  /** The pointer's moves, newest first, at most APPLIED_HISTORY_LIMIT. */
  getAppliedHistory(): Promise<AppliedEntry[]>;
  /** The rollout workflow last started for a site, and its commit. */
  getActiveRollout(site: string): Promise<ActiveRollout | undefined>;
  setActiveRollout(site: string, rollout: ActiveRollout): Promise<void>;
}
