// The HA half of a server's shared state: with `ha.etcd` configured, model revisions live in etcd
// and the servers sharing it elect one leader there.
import { Etcd3 } from 'etcd3';
import { BootStateStore } from '../../activities/store/boot-state-store';
import { EtcdBootDocs } from '../../activities/store/etcd-boot-docs';
import { EtcdModelStore } from '../../activities/store/etcd-store';
import type { ModelStore } from '../../activities/store/model-store';
import type { ServerConfig } from '../config';
import { createEtcdLeadership } from './etcd-leader';
import type { Log } from '../http/log';
import type { Leadership } from './leader';

export type EtcdConfig = NonNullable<ServerConfig['ha']>['etcd'];

/** The etcd store and election; closing the leadership also closes the etcd client. */
export function etcdState(
  etcd: EtcdConfig,
  log: Log,
): { store: ModelStore; bootState: BootStateStore; leadership: Leadership } {
  // Requests fail after 5 s instead of waiting for etcd forever: the caller (an activity, the agent
  // API) reports the outage and retries.
  const client = new Etcd3({
    hosts: etcd.endpoints,
    dialTimeout: 5_000,
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + 5_000 }),
  });
  const store = new EtcdModelStore(client, etcd.prefix);
  const election = createEtcdLeadership({
    client: client.namespace(etcd.prefix),
    name: etcd.election,
    ttl: etcd.lease_ttl_s,
    log,
  });
  const bootDocs = new EtcdBootDocs(client, etcd.prefix);
  return {
    store,
    bootState: new BootStateStore(bootDocs),
    leadership: {
      isLeader: () => election.isLeader(),
      onChange: (listener) => election.onChange(listener),
      async close() {
        await election.close();
        await bootDocs.close();
        client.close();
      },
    },
  };
}
