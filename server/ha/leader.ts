// Leadership in HA (docs/ha.md): only the leader takes webhooks and runs pollers; /ready is 200 only on
// the leader. A single server without etcd is always the leader.

export interface Leadership {
  isLeader(): boolean;
  /** Called on every change, with the new state; returns an unsubscribe function. */
  onChange(listener: (leader: boolean) => void): () => void;
  /** Resigns (if leading) and stops campaigning. */
  close(): Promise<void>;
}

/** The leadership of a server that runs alone (no etcd configured). */
export function alwaysLeader(): Leadership {
  return { isLeader: () => true, onChange: () => () => {}, close: async () => {} };
}
