import type { Namespace } from 'etcd3';
import { DEFAULT_ETCD_PREFIX } from './etcd-store';
import { parseDoc, type BootDoc, type BootDocs, type StoredDoc } from './boot-state-store';

/** How often a watch asks etcd whether the document moved: the bound on how late a watcher hears it. */
const POLL_MS = 200;

const key = (site: string) => {
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(site)) throw new Error(`invalid site ${JSON.stringify(site)}`);
  return `boot/${site}`;
};

/**
 * The site documents shared by every server replica (HA): one etcd key per site, replaced in a
 * transaction on its mod revision, so two servers' writes never overwrite each other.
 */
export class EtcdBootDocs implements BootDocs {
  private readonly ns: Namespace;

  constructor(client: Namespace, prefix: string = DEFAULT_ETCD_PREFIX) {
    this.ns = client.namespace(prefix);
  }

  private async version(site: string): Promise<string | undefined> {
    const kv = (await this.ns.get(key(site)).exec()).kvs[0];
    return kv?.mod_revision;
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
    const keys = await this.ns.getAll().prefix('boot/').keys();
    return keys.map((k) => k.slice('boot/'.length)).sort();
  }

  async changed(site: string, ms: number, signal?: AbortSignal): Promise<void> {
    const deadline = Date.now() + ms;
    const start = await this.version(site);
    while (Date.now() < deadline && !signal?.aborted) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(POLL_MS, deadline - Date.now())));
      if ((await this.version(site)) !== start) return;
    }
  }
}
