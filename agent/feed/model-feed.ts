// Where an agent gets its site's model revisions from. The protocol servers only ever read a local
// copy (agent/model-cache.ts), so they keep serving while the server or Temporal is down.
import type { Model } from '../../schemas/model';

export interface SiteRevision {
  /** The SoT commit the model was built from. */
  commit: string;
  /** The model cut down to this agent's site (only its own site's hosts; os/profiles/assets whole). */
  model: Model;
}

/**
 * The agent's upstream for models: the server's agent API over HTTPS (server/agent-client.ts), or a
 * file model store on the same machine (standalone). Errors mean "unreachable now": the caller keeps
 * serving from its disk cache and tries again.
 */
export interface ModelFeed {
  /** The site's revision that was last applied, or undefined when none was applied yet. */
  current(): Promise<SiteRevision | undefined>;
  /** A given commit's revision (an armed host of an older commit), or undefined when unknown. */
  revision(commit: string): Promise<SiteRevision | undefined>;
}
