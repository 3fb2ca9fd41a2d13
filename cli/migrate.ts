// `vaquero migrate --from <store> --to <store>`: copies every model revision and pointer, the stored
// rollout plans and the sites' boot states (arms, power claims) between the file store and etcd
// (going HA, or back). Safe to re-run: what is already there and equal is left
// alone, what differs is refused unless --force, and everything written is read back to compare.
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { Etcd3 } from 'etcd3';
import { readJsonIfExists } from '../activities/store/atomic-file';
import { emptyDoc, type BootDoc, type BootDocs } from '../activities/store/boot-state-store';
import { EtcdBootDocs } from '../activities/store/etcd-boot-docs';
import { FileBootDocs } from '../activities/store/file-boot-docs';
import { DEFAULT_ETCD_PREFIX, EtcdModelStore } from '../activities/store/etcd-store';
import { FileModelStore } from '../activities/store/file-store';
import type { ActiveRollout, ModelStore } from '../activities/store/model-store';
import { CliError, parse, type Io } from './io';

const USAGE =
  'usage: vaquero migrate --from file:<dir>|etcd:<url>[,<url>...] --to file:<dir>|etcd:<url>[,...] [--prefix /vaquero/] [--force]';

/** A store with what a copy needs besides the ModelStore: listing what is in it. */
interface StoreEnd {
  label: string;
  store: ModelStore;
  /** Another instance over the same data, with no cache: what a read-back must go through. */
  reopen(): ModelStore;
  revisions(): Promise<string[]>;
  /** Keys of the stored rollout plans: a rollout in flight reads its plan by key. */
  plans(): Promise<string[]>;
  rollouts(): Promise<Map<string, ActiveRollout>>;
  /** The sites' boot states: arms of hosts in flight and power claims (docs/ha.md). */
  boot: BootDocs;
  /** Another instance over the same documents, with no cache, for the read-back. */
  reopenBoot(): BootDocs;
  close(): void;
}

function fileEnd(dir: string): StoreEnd {
  // FileModelStore's layout (revisions/<commit>.json, pointers.json) read directly, as it has no listing.
  const list = async () => {
    try {
      const names = await readdir(path.join(dir, 'revisions'));
      return names.filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -'.json'.length));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  };
  const rollouts = async () => {
    const pointers = (await readJsonIfExists(path.join(dir, 'pointers.json'))) as
      { rollouts?: Record<string, ActiveRollout> } | undefined;
    return new Map(Object.entries(pointers?.rollouts ?? {}));
  };
  // plans/<commit>/<site>.json, and plans/<commit>/<site>/<tag>.json for a takeover's replan.
  const plans = async () => {
    try {
      const files = await readdir(path.join(dir, 'plans'), { recursive: true });
      return files
        .filter((f) => f.endsWith('.json'))
        .map((f) => f.slice(0, -'.json'.length).split(path.sep).join('/'))
        .sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  };
  return {
    label: `file:${dir}`,
    store: new FileModelStore(dir),
    reopen: () => new FileModelStore(dir),
    revisions: async () => (await list()).sort(),
    plans,
    rollouts,
    // Where `vaquero server` keeps them beside a file store (server/main.ts).
    boot: new FileBootDocs(path.join(dir, 'boot-state')),
    reopenBoot: () => new FileBootDocs(path.join(dir, 'boot-state')),
    close: () => undefined,
  };
}

async function etcdEnd(endpoints: string[], prefix: string): Promise<StoreEnd> {
  const client = new Etcd3({ hosts: endpoints, dialTimeout: 5_000 });
  const store = new EtcdModelStore(client, prefix);
  try {
    await Promise.race([
      client.maintenance.status(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('no answer in 5 s')), 5_000).unref()),
    ]);
  } catch (err) {
    client.close();
    throw new CliError(`cannot reach etcd at ${endpoints.join(',')}: ${(err as Error).message}`, 1);
  }
  return {
    label: `etcd:${endpoints.join(',')}${prefix}`,
    store,
    reopen: () => new EtcdModelStore(client, prefix),
    revisions: () => store.listRevisions(),
    plans: () => store.listPlans(),
    rollouts: () => store.listActiveRollouts(),
    boot: new EtcdBootDocs(client, prefix),
    reopenBoot: () => new EtcdBootDocs(client, prefix),
    close: () => client.close(),
  };
}

function openEnd(spec: string, prefix: string, io: Io): Promise<StoreEnd> {
  const [kind, ...rest] = spec.split(':');
  const where = rest.join(':');
  if (kind === 'file' && where) return Promise.resolve(fileEnd(path.resolve(io.cwd(), where)));
  if (kind === 'etcd' && where) {
    const endpoints = where.split(',').filter(Boolean);
    const bad = endpoints.find((e) => !/^https?:\/\/[^/]+$/.test(e));
    if (bad) throw new CliError(`etcd endpoint ${bad}: expected http(s)://host:port`);
    return etcdEnd(endpoints, prefix);
  }
  throw new CliError(`${spec}: expected file:<dir> or etcd:<url>[,<url>...]\n${USAGE}`);
}

interface Plan {
  /** Missing at the target. */
  copy: string[];
  same: string[];
  /** At the target with other content. */
  differ: string[];
}

async function planRevisions(from: StoreEnd, to: StoreEnd, commits: string[]): Promise<Plan> {
  const plan: Plan = { copy: [], same: [], differ: [] };
  for (const commit of commits) {
    const there = await to.store.getRevision(commit);
    if (!there) plan.copy.push(commit);
    else if (isDeepStrictEqual(there, await from.store.getRevision(commit))) plan.same.push(commit);
    else plan.differ.push(commit);
  }
  return plan;
}

/** Reads everything back through a fresh instance: a cache would answer with what was just written. */
async function verify(
  from: StoreEnd,
  to: StoreEnd,
  commits: string[],
  applied: string | undefined,
  rollouts: Map<string, ActiveRollout>,
): Promise<void> {
  const check = to.reopen();
  for (const commit of commits)
    if (!isDeepStrictEqual(await check.getRevision(commit), await from.store.getRevision(commit)))
      throw new CliError(`verification failed: revision ${commit} reads back different at ${to.label}`, 1);
  if (applied && (await check.getApplied()) !== applied)
    throw new CliError(`verification failed: applied reads back different at ${to.label}`, 1);
  for (const [site, rollout] of rollouts)
    if (!isDeepStrictEqual(await check.getActiveRollout(site), rollout))
      throw new CliError(
        `verification failed: the rollout of ${site} reads back different at ${to.label}`,
        1,
      );
}

interface BootPlan extends Plan {
  /** Each site's document at the source, as read once: the copy writes and verifies exactly that. */
  docs: Map<string, BootDoc>;
}

/** A site with no document at the target counts as missing; an equal one is left alone. */
async function planBootStates(from: StoreEnd, to: StoreEnd): Promise<BootPlan> {
  const plan: BootPlan = { copy: [], same: [], differ: [], docs: new Map() };
  for (const site of await from.boot.sites()) {
    const { doc } = await from.boot.read(site);
    plan.docs.set(site, doc);
    const there = (await to.boot.read(site)).doc;
    if (isDeepStrictEqual(there, doc)) plan.same.push(site);
    else if (isDeepStrictEqual(there, emptyDoc())) plan.copy.push(site);
    else plan.differ.push(site);
  }
  return plan;
}

/**
 * Writes each site's document whole, revision included, so that an agent's watch goes on from the
 * revision it holds; then reads every one back through a fresh instance.
 */
async function copyBootStates(from: StoreEnd, to: StoreEnd, sites: string[]): Promise<number> {
  const plan = await planBootStates(from, to);
  for (const site of sites) {
    const doc = plan.docs.get(site);
    const { version } = await to.boot.read(site);
    if (doc && !(await to.boot.write(site, doc, version)))
      throw new CliError(`the boot state of site ${site} changed at ${to.label} during the copy`, 1);
  }
  const check = to.reopenBoot();
  for (const [site, doc] of plan.docs)
    if (!isDeepStrictEqual((await check.read(site)).doc, doc))
      throw new CliError(
        `verification failed: the boot state of ${site} reads back different at ${to.label}`,
        1,
      );
  return sites.length;
}

async function copy(from: StoreEnd, to: StoreEnd, force: boolean, io: Io): Promise<void> {
  const commits = await from.revisions();
  const plan = await planRevisions(from, to, commits);
  const conflicts = plan.differ.map((c) => `revision ${c} differs at the target`);
  const applied = await from.store.getApplied();
  const targetApplied = await to.store.getApplied();
  if (applied && targetApplied && applied !== targetApplied)
    conflicts.push(`applied is ${targetApplied} at the target, ${applied} at the source`);
  const rollouts = await from.rollouts();
  const targetRollouts = await to.rollouts();
  for (const [site, rollout] of rollouts) {
    const there = targetRollouts.get(site);
    if (there && !isDeepStrictEqual(there, rollout))
      conflicts.push(`the active rollout of ${site} is ${there.workflowId} at the target`);
  }
  const boot = await planBootStates(from, to);
  conflicts.push(...boot.differ.map((site) => `the boot state of site ${site} differs at the target`));
  if (conflicts.length > 0 && !force)
    throw new CliError(
      `${to.label} holds different data; nothing was copied (--force overwrites):\n  ${conflicts.join('\n  ')}`,
      1,
    );

  // A plan is written once per commit and site and never changed: what is missing is copied.
  const plans: string[] = [];
  for (const key of await from.plans()) {
    const there = await to.store.getPlan(key);
    if (!there || (force && !isDeepStrictEqual(there, await from.store.getPlan(key)))) plans.push(key);
  }
  for (const key of plans) {
    const sitePlan = await from.store.getPlan(key);
    if (sitePlan) await to.store.putPlan(key, sitePlan);
  }
  const check = to.reopen();
  for (const key of plans)
    if (!isDeepStrictEqual(await check.getPlan(key), await from.store.getPlan(key)))
      throw new CliError(`verification failed: plan ${key} reads back different at ${to.label}`, 1);

  const writes = force ? [...plan.copy, ...plan.differ] : plan.copy;
  for (const commit of writes) {
    const model = await from.store.getRevision(commit);
    if (model) await to.store.putRevision(commit, model);
  }
  for (const [site, rollout] of rollouts) await to.store.setActiveRollout(site, rollout);
  if (applied) await to.store.setApplied(applied);

  const bootWrites = await copyBootStates(from, to, force ? [...boot.copy, ...boot.differ] : boot.copy);

  await verify(from, to, commits, applied, rollouts);
  io.out(
    `${from.label} -> ${to.label}: ${commits.length} revisions (${writes.length} written, ${plan.same.length} already there), ` +
      `${plans.length} plans written, applied ${applied ?? '(none)'}, ${rollouts.size} active rollouts, ` +
      `${boot.docs.size} site boot states (${bootWrites} written, ${boot.same.length} already there); verified\n`,
  );
}

export async function migrateCommand(args: string[], io: Io): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    io.out(USAGE.endsWith('\n') ? USAGE : `${USAGE}\n`);
    return 0;
  }
  const { values, positionals } = parse(args, {
    from: { type: 'string' },
    to: { type: 'string' },
    prefix: { type: 'string', default: DEFAULT_ETCD_PREFIX },
    force: { type: 'boolean', default: false },
  });
  if (!values.from || !values.to || positionals.length > 0) throw new CliError(USAGE);
  if (values.from === values.to) throw new CliError('--from and --to are the same store');
  const prefix = values.prefix.endsWith('/') ? values.prefix : `${values.prefix}/`;
  const from = await openEnd(values.from, prefix, io);
  let to: StoreEnd | undefined;
  try {
    to = await openEnd(values.to, prefix, io);
    await copy(from, to, values.force, io);
  } finally {
    from.close();
    to?.close();
  }
  return 0;
}
