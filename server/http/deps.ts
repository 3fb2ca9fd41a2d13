import type { Client } from '@temporalio/client';
import type { BootStateStore } from '../../activities/store/boot-state-store';
import type { ModelStore } from '../../activities/store/model-store';
import type { HookedSource, Secrets, ServerConfig } from '../config';
import type { AgentRegistry } from '../agent-registry';
import type { Leadership } from '../ha/leader';
import type { Log } from './log';
import type { ServerMetrics } from './metrics';

/** What a `pull_request` delivery became: checked in the background, or ignored with a reason. */
export type PullRequestOutcome = { status: 'checking'; sha: string } | { status: 'ignored'; reason: string };

/** Validates and plans pull requests and reports back to GitHub (server/github/). */
export interface PullRequestChecks {
  /** Answers at once; the check runs in the background (GitHub gives a delivery 10 s). */
  check(source: HookedSource, payload: unknown, log: Log): PullRequestOutcome;
}

/** What the HTTP app is built from; the entry point makes each of them once. */
export interface AppDeps {
  config: ServerConfig;
  /** The config's secret references, resolved by the entry point. */
  secrets: Secrets;
  temporal: Client;
  /** Model revisions, for the routes that serve them. */
  store?: ModelStore;
  /** The sites' arms and power claims, shared with every agent of a site (docs/ha.md). */
  bootState?: BootStateStore;
  /** Absent: this server is the only one, always the leader. */
  leadership?: Leadership;
  /** Absent: /metrics answers 404 and nothing is counted. */
  metrics?: ServerMetrics;
  /** Absent: pull_request deliveries are acknowledged and ignored. */
  pullRequests?: PullRequestChecks;
  /** Agents' heartbeats, shared with the worker's activities; absent: the app keeps its own. */
  agents?: AgentRegistry;
  log: Log;
}

export interface AppEnv {
  Variables: { requestId: string; log: Log; webhookOutcome?: string };
}
