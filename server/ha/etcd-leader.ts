// Leadership of HA servers by etcd election (etcd3's Election: one lease-backed key per candidate, the
// oldest key leads). A leader whose lease may be gone must stop leading before another replica can be
// elected, so leadership is not only the campaign's 'elected' event: a watchdog reads the election
// every ttl/4 and the replica steps down at once when etcd does not confirm it within that time.
//
// Why that is safe: the lease is kept alive every ttl/3, so at etcd it cannot expire sooner than
// 2/3·ttl after this replica last reached etcd; the watchdog notices within 2 × ttl/4 = ttl/2.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Campaign, Election, Namespace } from 'etcd3';
import type { Log } from '../http/log';
import type { Leadership } from './leader';

export interface EtcdLeadershipOptions {
  /** An etcd client, or a namespace of one (e.g. the configured prefix). */
  client: Namespace;
  /** The election's name: replicas of one deployment share it. */
  name: string;
  /** The lease TTL in seconds: how long a crashed leader blocks the election (etcd's minimum is ~2). */
  ttl: number;
  /** This replica's value in the election (default host/pid/random); shown as the leader's id. */
  id?: string;
  log?: Log;
}

/** How soon a failed campaign (etcd down, lease lost) is tried again. */
const RETRY_MS = 500;

function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`etcd did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * etcd3's Campaign leaves a watcher on its predecessor's key when it fails (it waits for a delete
 * that may never come), and a client with a watcher attached reconnects forever, even after close():
 * a process would never exit. So each campaign gets its own election (its own watch manager), whose
 * watchers are cancelled when the campaign is abandoned.
 */
function cancelWatchers(election: Election): void {
  type Internals = { namespace?: { watchManager?: { watchers?: { cancel(): Promise<void> }[] } } };
  const watchers = (election as unknown as Internals).namespace?.watchManager?.watchers ?? [];
  for (const watcher of [...watchers]) watcher.cancel().catch(() => undefined);
}

export function createEtcdLeadership(options: EtcdLeadershipOptions): Leadership & { id: string } {
  const { log } = options;
  let election = options.client.election(options.name, options.ttl);
  const id = options.id ?? `${hostname()}/${process.pid}/${randomBytes(3).toString('hex')}`;
  const checkMs = Math.max(100, Math.round((options.ttl * 1000) / 4));
  const listeners = new Set<(leader: boolean) => void>();
  let leader = false;
  let closed = false;
  let elected = false;
  let campaign: Campaign | undefined;
  let retry: NodeJS.Timeout | undefined;
  let checks = 0;

  const set = (next: boolean, why: string) => {
    if (next === leader) return;
    leader = next;
    log?.[next ? 'info' : 'warn']({ election: options.name, id, why }, next ? 'leading' : 'not leading');
    for (const listener of listeners) listener(next);
  };

  const check = async () => {
    const n = ++checks;
    if (closed || !elected) return set(false, closed ? 'closed' : 'not elected');
    try {
      const current = await within(checkMs, election.leader());
      // A newer check has started (or finished) meanwhile: its answer counts, not this one's.
      if (n !== checks) return;
      if (current === id && elected && !closed) set(true, 'elected');
      else set(false, `the leader is ${current ?? 'nobody'}`);
    } catch (err) {
      if (n === checks) set(false, `etcd unreachable: ${(err as Error).message}`);
    }
  };

  const campaignNow = () => {
    retry = undefined;
    if (closed) return;
    election = options.client.election(options.name, options.ttl);
    const ownElection = election;
    const c = election.campaign(id);
    campaign = c;
    elected = false;
    c.on('elected', () => {
      if (campaign !== c) return;
      elected = true;
      void check();
    });
    c.on('error', (err) => {
      // The lease is lost (or was never granted): whatever was led is led no more.
      if (campaign !== c) return;
      campaign = undefined;
      elected = false;
      set(false, `campaign failed: ${err.message}`);
      c.resign().catch(() => undefined);
      cancelWatchers(ownElection);
      if (!closed) retry ??= setTimeout(campaignNow, RETRY_MS);
    });
  };

  const watchdog = setInterval(() => void check(), checkMs);
  campaignNow();

  return {
    id,
    isLeader: () => leader,
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      closed = true;
      clearInterval(watchdog);
      clearTimeout(retry);
      set(false, 'closed');
      const c = campaign;
      campaign = undefined;
      // Resigning lets another replica lead at once instead of after the TTL; etcd may be gone.
      if (c) await within(2_000, c.resign()).catch(() => undefined);
      cancelWatchers(election);
    },
  };
}
