import type { Client } from '@temporalio/client';
import type { ModelStore } from '../../activities/store/model-store';
import type { Secrets, ServerConfig } from '../config';
import type { Log } from './log';

/** What the HTTP app is built from; the entry point makes each of them once. */
export interface AppDeps {
  config: ServerConfig;
  /** The config's secret references, resolved by the entry point. */
  secrets: Secrets;
  temporal: Client;
  /** Model revisions, for the routes that serve them (not yet mounted). */
  store?: ModelStore;
  log: Log;
}

export interface AppEnv {
  Variables: { requestId: string; log: Log };
}
