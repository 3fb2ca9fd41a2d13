// The HA store: model revisions and pointers in etcd, shared by every server replica.
//
// etcd refuses a request over 1.5 MiB (--max-request-bytes), and a large site's model can be bigger.
// A revision is therefore gzip-compressed and cut into chunks of CHUNK_BYTES stored under the
// content's SHA-256 (`chunks/<sha256>/<i>`); the revision key (`revisions/<commit>`) holds a small
// manifest written last, so a reader sees a whole revision or none, never a part. A rollout's plan
// (`plans/<commit>/<site>`) is stored the same way: workflows pass its key, not the plan.
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';
import type { Namespace } from 'etcd3';
import { z } from 'zod';
import { APPLIED_HISTORY_LIMIT, AppliedEntrySchema, type AppliedEntry } from '../../schemas/applied';
import { ModelSchema, type Model } from '../../schemas/model';
import { checkPlanKey, SitePlanSchema, type SitePlan } from '../../schemas/plan';
import type { ActiveRollout, ModelStore } from './model-store';

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

/** Under etcd's 1.5 MiB default request limit, with room for the key and the request's framing. */
export const CHUNK_BYTES = 1024 * 1024;
export const DEFAULT_ETCD_PREFIX = '/vaquero/';

const ManifestSchema = z.object({
  encoding: z.literal('gzip'),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  chunks: z.int().positive(),
  bytes: z.int().nonnegative(),
});
type Manifest = z.infer<typeof ManifestSchema>;

const HistorySchema = z.array(AppliedEntrySchema);
const ActiveRolloutSchema = z.object({ workflowId: z.string(), commit: z.string() });

const keys = {
  revision: (commit: string) => `revisions/${commit}`,
  chunk: (sha256: string, i: number) => `chunks/${sha256}/${i}`,
  applied: 'applied',
  history: 'applied-history',
  rollout: (site: string) => `rollouts/${site}`,
  plan: (key: string) => `plans/${key}`,
};

function checkId(what: string, id: string): string {
  if (!/^[0-9a-zA-Z._-]+$/.test(id)) throw new Error(`invalid ${what} ${JSON.stringify(id)}`);
  return id;
}

export class EtcdModelStore implements ModelStore {
  private readonly cache = new Map<string, Model>();
  private readonly ns: Namespace;

  /** `client` is an Etcd3 client (or a namespace of one); every key goes under `prefix`. */
  constructor(client: Namespace, prefix: string = DEFAULT_ETCD_PREFIX) {
    this.ns = client.namespace(prefix);
  }

  /** Writes `value` gzip-compressed in chunks, then the manifest under `key`: readers see all or nothing. */
  private async putPacked(key: string, value: unknown): Promise<void> {
    const packed = await gzipAsync(Buffer.from(JSON.stringify(value)));
    const sha256 = createHash('sha256').update(packed).digest('hex');
    const chunks = Math.max(1, Math.ceil(packed.length / CHUNK_BYTES));
    for (let i = 0; i < chunks; i++)
      await this.ns
        .put(keys.chunk(sha256, i))
        .value(packed.subarray(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES))
        .exec();
    const manifest: Manifest = { encoding: 'gzip', sha256, chunks, bytes: packed.length };
    await this.ns.put(key).value(JSON.stringify(manifest)).exec();
  }

  private async getPacked(key: string, what: string): Promise<unknown> {
    const text = await this.ns.get(key).string();
    if (text === null) return undefined;
    const manifest = ManifestSchema.parse(JSON.parse(text));
    const parts: Buffer[] = [];
    for (let i = 0; i < manifest.chunks; i++) {
      const part = await this.ns.get(keys.chunk(manifest.sha256, i)).buffer();
      if (!part) throw new Error(`${what}: chunk ${i} of ${manifest.chunks} is missing`);
      parts.push(part);
    }
    const packed = Buffer.concat(parts);
    if (createHash('sha256').update(packed).digest('hex') !== manifest.sha256)
      throw new Error(`${what}: stored chunks do not match their checksum`);
    return JSON.parse((await gunzipAsync(packed)).toString('utf8')) as unknown;
  }

  async putRevision(commit: string, model: Model): Promise<void> {
    checkId('commit id', commit);
    await this.putPacked(keys.revision(commit), model);
    this.cache.set(commit, model);
  }

  async getRevision(commit: string): Promise<Model | undefined> {
    checkId('commit id', commit);
    const cached = this.cache.get(commit);
    if (cached) return cached;
    const json = await this.getPacked(keys.revision(commit), `revision ${commit}`);
    if (json === undefined) return undefined;
    const model = ModelSchema.parse(json);
    this.cache.set(commit, model);
    return model;
  }

  async putPlan(key: string, plan: SitePlan): Promise<void> {
    await this.putPacked(keys.plan(checkPlanKey(key)), plan);
  }

  async getPlan(key: string): Promise<SitePlan | undefined> {
    const json = await this.getPacked(keys.plan(checkPlanKey(key)), `plan ${key}`);
    return json === undefined ? undefined : SitePlanSchema.parse(json);
  }

  /** Every stored plan's key (for `vaquero migrate`). */
  async listPlans(): Promise<string[]> {
    const all = await this.ns.getAll().prefix('plans/').keys();
    return all.map((k) => k.slice('plans/'.length)).sort();
  }

  async getApplied(): Promise<string | undefined> {
    return (await this.ns.get(keys.applied).string()) ?? undefined;
  }

  async setApplied(commit: string): Promise<void> {
    await this.ns.put(keys.applied).value(checkId('commit id', commit)).exec();
  }

  /**
   * One transaction: the pointer moves only if it still holds `expected`, and the history only if no
   * one rewrote it since it was read, so two servers (or two applies) never both win.
   */
  async advanceApplied(expected: string | undefined, entry: AppliedEntry): Promise<boolean> {
    checkId('commit id', entry.commit);
    const read = await this.ns.get(keys.history).exec();
    const kv = read.kvs[0];
    const history = kv ? HistorySchema.parse(JSON.parse(kv.value.toString('utf8'))) : [];
    const next = [entry, ...history].slice(0, APPLIED_HISTORY_LIMIT);
    const pointer = expected
      ? this.ns.if(keys.applied, 'Value', '==', expected)
      : this.ns.if(keys.applied, 'Create', '==', 0);
    const unchanged = kv
      ? pointer.and(keys.history, 'Mod', '==', kv.mod_revision)
      : pointer.and(keys.history, 'Create', '==', 0);
    const result = await unchanged
      .then(
        this.ns.put(keys.applied).value(entry.commit),
        this.ns.put(keys.history).value(JSON.stringify(next)),
      )
      .commit();
    return result.succeeded;
  }

  async getAppliedHistory(): Promise<AppliedEntry[]> {
    const text = await this.ns.get(keys.history).string();
    return text === null ? [] : HistorySchema.parse(JSON.parse(text));
  }

  async getActiveRollout(site: string): Promise<ActiveRollout | undefined> {
    const text = await this.ns.get(keys.rollout(checkId('site', site))).string();
    return text === null ? undefined : ActiveRolloutSchema.parse(JSON.parse(text));
  }

  async setActiveRollout(site: string, rollout: ActiveRollout): Promise<void> {
    await this.ns
      .put(keys.rollout(checkId('site', site)))
      .value(JSON.stringify({ workflowId: rollout.workflowId, commit: rollout.commit }))
      .exec();
  }

  /** Every stored revision's commit (for `vaquero migrate`). */
  async listRevisions(): Promise<string[]> {
    const all = await this.ns.getAll().prefix('revisions/').keys();
    return all.map((k) => k.slice('revisions/'.length)).sort();
  }

  /** Every site's active rollout (for `vaquero migrate`). */
  async listActiveRollouts(): Promise<Map<string, ActiveRollout>> {
    const all = await this.ns.getAll().prefix('rollouts/').strings();
    const out = new Map<string, ActiveRollout>();
    for (const [key, value] of Object.entries(all))
      out.set(key.slice('rollouts/'.length), ActiveRolloutSchema.parse(JSON.parse(value)));
    return out;
  }
}
