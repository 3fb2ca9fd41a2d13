import type { ArmEntry } from '../../schemas/agent';
import type { BootEventSink } from '../../schemas/rollout';
import type { Model } from '../../schemas/model';
import type { BootRefusalCounts } from './boot-guard';

export interface AssetLog {
  level: 'info' | 'warn' | 'error';
  msg: string;
  [field: string]: unknown;
}

/** The models the agent serves from: the one of an armed commit, and the newest one it has. */
export interface ModelSource {
  forCommit(commit: string): Promise<Model | undefined>;
  current(): Model;
}

/** Which MACs are armed; `list` lets a file request without a MAC be matched to the one host using it. */
export interface NetbootLookup {
  lookup(mac: string): Promise<ArmEntry | undefined>;
  list?(): Promise<ArmEntry[]>;
}

export interface AssetAppDeps {
  models: ModelSource;
  site: string;
  /** This agent's name in the site's `agents`: boot URLs of hosts on its subnets point at it. */
  agent?: string;
  netboot: NetbootLookup;
  events: BootEventSink;
  /** Served under /files/; nothing outside it (after symlinks are resolved) is. */
  filesDir: string;
  log: (entry: AssetLog) => void;
  now?: () => Date;
  /** The site agent's CDN (`cdn` in schemas/site.ts), proxied and cached under /cdn/; none: no /cdn/. */
  cdn?: { url: string; cacheDir: string; timeoutMs?: number };
  /**
   * The address a MAC's lease gives it, where the site's own DHCP hands leases out (server mode);
   * boot requests of an armed host from any other address are refused. None: no address check.
   */
  leaseAddress?: (mac: string) => string | undefined;
  /** Refused boot requests of armed hosts, by reason (counted here for the caller to report). */
  refusals?: BootRefusalCounts;
}
