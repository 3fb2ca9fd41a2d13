import { EventEmitter } from 'node:events';
import type { Namespace, Watcher } from 'etcd3';
import { DEFAULT_ETCD_PREFIX } from './etcd-store';
import { parseDoc, type BootDoc, type BootDocs, type StoredDoc } from './boot-state-store';

const KEYS = 'boot/';

const key = (site: string) => {
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(site)) throw new Error(`invalid site ${JSON.stringify(site)}`);
  return `${KEYS}${site}`;
};

/**
 * The site documents shared by every server replica (HA): one etcd key per site, replaced in a
 * transaction on its mod revision, so two servers' writes never overwrite each other. Waiting long
 * polls share one etcd watch of this server on every site's key: they read nothing while they wait.
 */
export class EtcdBootDocs implements BootDocs {
  private readonly ns: Namespace;
  private watcher: Promise<Watcher> | undefined;
  /** Emits a site's name at each write to it, and '*' when the watch reconnected (writes may be missed). */
  private readonly wakes = new EventEmitter().setMaxListeners(0);

  constructor(client: Namespace, prefix: string = DEFAULT_ETCD_PREFIX) {
    this.ns = client.namespace(prefix);
  }

  async read(site: string): Promise<StoredDoc> {
    const kv = (await this.ns.get(key(site)).exec()).kvs[0];
    return { doc: parseDoc(kv?.value.toString('utf8')), version: kv?.mod_revision };
  }

  async write(site: string, doc: BootDoc, version: string | undefined): Promise<boolean> {
    const unchanged =
      version === undefined
        ? this.ns.if(key(site), 'Create', '==', 0)
        : this.ns.if(key(site), 'Mod', '==', version);
    const result = await unchanged.then(this.ns.put(key(site)).value(JSON.stringify(doc))).commit();
    return result.succeeded;
  }

  async sites(): Promise<string[]> {
    const keys = await this.ns.getAll().prefix(KEYS).keys();
    return keys.map((k) => k.slice(KEYS.length)).sort();
  }

  private closed = false;

  /** Cancels the watch: etcd3's client.close() leaves a watch reconnecting, and the process alive. */
  async close(): Promise<void> {
    this.closed = true;
    const watcher = this.watcher;
    this.watcher = undefined;
    this.wakes.emit('*');
    await (await watcher?.catch(() => undefined))?.cancel();
  }

  private watch(): Promise<Watcher> {
    if (this.closed) return Promise.reject(new Error('the boot state store is closed'));
    this.watcher ??= this.ns
      .watch()
      .prefix(KEYS)
      .create()
      .then((watcher) => {
        const wake = (kv: { key: Buffer }) => this.wakes.emit(kv.key.toString('utf8').slice(KEYS.length));
        watcher.on('put', wake);
        // A deleted document (a wiped store) is revision 0 again: agents take it whole.
        watcher.on('delete', wake);
        // etcd3 resumes a reconnected watch from its last revision; waking everyone is for safety.
        watcher.on('connected', () => this.wakes.emit('*'));
        watcher.on('error', () => {
          this.watcher = undefined;
          this.wakes.emit('*');
        });
        return watcher;
      });
    this.watcher.catch(() => (this.watcher = undefined));
    return this.watcher;
  }

  async changed(site: string, ms: number, signal?: AbortSignal, version?: string): Promise<void> {
    key(site);
    await this.watch();
    let finish: () => void = () => undefined;
    const woken = new Promise<void>((resolve) => {
      const timer = setTimeout(() => finish(), ms);
      finish = () => {
        clearTimeout(timer);
        this.wakes.off(site, finish).off('*', finish);
        signal?.removeEventListener('abort', finish);
        resolve();
      };
      this.wakes.on(site, finish).on('*', finish);
      signal?.addEventListener('abort', finish, { once: true });
    });
    // A write between the caller's read (`version`, undefined: no document) and this watch was not
    // seen by it: one read catches it.
    if ((await this.read(site)).version !== version) finish();
    return woken;
  }
}
