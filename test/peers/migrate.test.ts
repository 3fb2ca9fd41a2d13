// `vaquero migrate` between a file store and a real etcd, both ways: everything arrives and reads
// back equal, a re-run writes nothing, and a target that holds other data is refused without --force.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Etcd3 } from 'etcd3';
import { BootStateStore } from '../../activities/store/boot-state-store';
import { EtcdBootDocs } from '../../activities/store/etcd-boot-docs';
import { EtcdModelStore } from '../../activities/store/etcd-store';
import { FileBootDocs } from '../../activities/store/file-boot-docs';
import { FileModelStore } from '../../activities/store/file-store';
import type { ModelStore } from '../../activities/store/model-store';
import { validateSot } from '../../sot/validate';
import { main } from '../../cli/main';
import { CliError, type Io } from '../../cli/io';
import { migrateCommand } from '../../cli/migrate';
import type { ArmEntry } from '../../schemas/agent';
import type { Model } from '../../schemas/model';
import type { SitePlan } from '../../schemas/plan';
import { startEtcd, type TestEtcd } from '../helpers/etcd';
import { sotMin } from '../helpers/sot';

let model: Model;
let etcd: TestEtcd;
let client: Etcd3;
const dirs: string[] = [];

before(async () => {
  const result = await validateSot(sotMin);
  assert.ok(result.model);
  model = result.model;
  etcd = await startEtcd();
  client = new Etcd3({ hosts: etcd.endpoint });
});
after(async () => {
  client.close();
  await etcd.cleanup();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'vaquero-migrate-'));
  dirs.push(dir);
  return dir;
}

/** The command as `vaquero migrate` runs it: a CliError is its message on stderr and its exit code. */
async function migrate(...args: string[]) {
  let out = '';
  let err = '';
  const io: Io = { out: (t) => void (out += t), err: (t) => void (err += t), cwd: () => '/' };
  try {
    return { code: await migrateCommand(args, io), out, err };
  } catch (e) {
    if (!(e instanceof CliError)) throw e;
    return { code: e.exitCode, out, err: `${e.message}\n` };
  }
}

/** Two revisions (the second with one asset more), applied, and two sites' rollouts. */
async function fill(store: ModelStore): Promise<Model> {
  const second: Model = { ...model, assets: { ...model.assets, 'motd.txt': 'second commit\n' } };
  await store.putRevision('c1', model);
  await store.putRevision('c2', second);
  await store.setApplied('c2');
  await store.setActiveRollout('fra1', { workflowId: 'rollout/fra1/c2', commit: 'c2' });
  await store.setActiveRollout('iad1', { workflowId: 'rollout/iad1/c1', commit: 'c1' });
  // The plans the active rollouts read by key (one a takeover's replan).
  await store.putPlan('c2/fra1', plan('fra1'));
  await store.putPlan('c2/fra1/takeover', plan('fra1'));
  return second;
}

async function assertFilled(store: ModelStore, second: Model): Promise<void> {
  assert.deepEqual(await store.getRevision('c1'), model);
  assert.deepEqual(await store.getRevision('c2'), second);
  assert.equal(await store.getApplied(), 'c2');
  assert.deepEqual(await store.getActiveRollout('fra1'), { workflowId: 'rollout/fra1/c2', commit: 'c2' });
  assert.deepEqual(await store.getActiveRollout('iad1'), { workflowId: 'rollout/iad1/c1', commit: 'c1' });
  assert.deepEqual(await store.getPlan('c2/fra1'), plan('fra1'));
  assert.deepEqual(await store.getPlan('c2/fra1/takeover'), plan('fra1'));
}

function arm(site: string, i: number): ArmEntry {
  return {
    mac: `52:54:00:00:05:0${i}`,
    site,
    host: `h${i}`,
    commit: 'abc1234',
    stage: 1,
    workflowId: `host/${site}/h${i}/abc1234`,
    armedAt: '2026-12-07T14:00:00.000Z',
    token: 'x'.repeat(32),
  };
}

function plan(site: string): SitePlan {
  const hosts = [{ host: 'web-1', group: 'web', reasons: ['kernel changed'] }];
  return {
    site,
    name: site,
    approval_required: false,
    canary_size: 1,
    max_fail: 0,
    groups: [],
    waves: [{ index: 1, canary: true, groups: ['web'], hosts }],
    unchanged: [],
    removed: [],
    skipped: [],
  };
}

describe('vaquero migrate', () => {
  test('file -> etcd copies everything, verified; a re-run writes nothing', async () => {
    const dir = await tempDir();
    const second = await fill(new FileModelStore(dir));
    const args = ['--from', `file:${dir}`, '--to', `etcd:${etcd.endpoint}`, '--prefix', '/m1/'];
    const first = await migrate(...args);
    assert.equal(first.code, 0, first.err);
    assert.match(
      first.out,
      /2 revisions \(2 written, 0 already there\), 2 plans written, applied c2, 2 active rollouts, 0 site boot states \(0 written, 0 already there\); verified/,
    );
    await assertFilled(new EtcdModelStore(client, '/m1/'), second);
    const again = await migrate(...args);
    assert.equal(again.code, 0, again.err);
    assert.match(again.out, /2 revisions \(0 written, 2 already there\), 0 plans written/);
  });

  test('etcd -> file copies everything back', async () => {
    const second = await fill(new EtcdModelStore(client, '/m2/'));
    const dir = await tempDir();
    const run = await migrate('--from', `etcd:${etcd.endpoint}`, '--prefix', '/m2', '--to', `file:${dir}`);
    assert.equal(run.code, 0, run.err);
    await assertFilled(new FileModelStore(dir), second);
  });

  test('a target with a different revision is refused, untouched, unless --force', async () => {
    const dir = await tempDir();
    await fill(new FileModelStore(dir));
    const target = new EtcdModelStore(client, '/m3/');
    const other: Model = { ...model, assets: { ...model.assets, 'motd.txt': 'written elsewhere\n' } };
    await target.putRevision('c2', other);
    const args = ['--from', `file:${dir}`, '--to', `etcd:${etcd.endpoint}`, '--prefix', '/m3/'];
    const refused = await migrate(...args);
    assert.equal(refused.code, 1);
    assert.match(
      refused.err,
      /holds different data; nothing was copied \(--force overwrites\):\n {2}revision c2 differs/,
    );
    const fresh = () => new EtcdModelStore(client, '/m3/');
    assert.equal(await fresh().getRevision('c1'), undefined, 'nothing copied');
    assert.deepEqual(await fresh().getRevision('c2'), other);
    const forced = await migrate(...args, '--force');
    assert.equal(forced.code, 0, forced.err);
    assert.match(forced.out, /2 written/);
    assert.notDeepEqual(await fresh().getRevision('c2'), other);
  });

  test('site boot states (arms in flight, power claims) move both ways, verified, once', async () => {
    const dir = await tempDir();
    // Where `vaquero server` keeps them: <store dir>/boot-state, or <prefix>boot/ in etcd.
    const source = new BootStateStore(new FileBootDocs(path.join(dir, 'boot-state')));
    await source.arm('fra1', arm('fra1', 1));
    await source.arm('fra1', arm('fra1', 2));
    await source.disarm('fra1', arm('fra1', 1).mac);
    await source.arm('iad1', arm('iad1', 3));
    const begun = new Date().toISOString();
    await source.begin('fra1', { key: 'host/fra1/h2/abc1234/power-1', mac: arm('fra1', 2).mac, begun });
    const args = ['--from', `file:${dir}`, '--to', `etcd:${etcd.endpoint}`, '--prefix', '/m5/'];
    const first = await migrate(...args);
    assert.equal(first.code, 0, first.err);
    assert.match(first.out, /2 site boot states \(2 written, 0 already there\); verified/);
    const target = new BootStateStore(new EtcdBootDocs(client, '/m5/'));
    // The revision comes along too: an agent's watch goes on from the one it holds.
    assert.deepEqual(await target.arms('fra1'), await source.arms('fra1'));
    assert.equal((await target.arms('fra1')).revision, 3);
    assert.deepEqual(await target.arms('iad1'), await source.arms('iad1'));
    assert.deepEqual(await target.claim('fra1', 'host/fra1/h2/abc1234/power-1'), {
      key: 'host/fra1/h2/abc1234/power-1',
      mac: arm('fra1', 2).mac,
      begun,
    });
    const again = await migrate(...args);
    assert.equal(again.code, 0, again.err);
    assert.match(again.out, /2 site boot states \(0 written, 2 already there\)/);

    // Back to a new file store: what a server started on it serves.
    const back = await tempDir();
    const home = await migrate('--from', `etcd:${etcd.endpoint}`, '--prefix', '/m5/', '--to', `file:${back}`);
    assert.equal(home.code, 0, home.err);
    const served = new BootStateStore(new FileBootDocs(path.join(back, 'boot-state')));
    assert.deepEqual(await served.arms('fra1'), await source.arms('fra1'));
    assert.equal((await served.claim('fra1', 'host/fra1/h2/abc1234/power-1'))?.begun, begun);

    // The target armed something else meanwhile: refused, untouched, unless --force.
    await target.arm('iad1', arm('iad1', 4));
    const refused = await migrate(...args);
    assert.equal(refused.code, 1);
    assert.match(
      refused.err,
      /nothing was copied \(--force overwrites\):\n {2}the boot state of site iad1 differs/,
    );
    assert.equal((await target.arms('iad1')).arms.length, 2);
    const forced = await migrate(...args, '--force');
    assert.equal(forced.code, 0, forced.err);
    assert.match(forced.out, /2 site boot states \(1 written, 1 already there\)/);
    assert.deepEqual(await target.arms('iad1'), await source.arms('iad1'));
  });

  test('bad arguments and an unreachable etcd are one clear line each', async () => {
    const usage = await migrate('--from', 'file:/tmp/x');
    assert.equal(usage.code, 2);
    assert.match(usage.err, /^usage: vaquero migrate/);
    const kind = await migrate('--from', 's3:bucket', '--to', 'file:/tmp/x');
    assert.match(kind.err, /s3:bucket: expected file:<dir> or etcd:<url>/);
    const down = await migrate('--from', 'file:/tmp/none', '--to', 'etcd:http://127.0.0.1:1');
    assert.equal(down.code, 1);
    assert.match(down.err, /^cannot reach etcd at http:\/\/127\.0\.0\.1:1: /);
  });

  test('vaquero migrate is a command of the CLI', async () => {
    const dir = await tempDir();
    await fill(new FileModelStore(dir));
    let out = '';
    const io: Io = { out: (t) => void (out += t), err: (t) => void (out += t), cwd: () => '/' };
    const code = await main(
      ['migrate', '--from', `file:${dir}`, '--to', `etcd:${etcd.endpoint}`, '--prefix', '/m4/'],
      io,
    );
    assert.equal(code, 0, out);
    assert.match(out, /verified/);
    assert.equal(await main(['migrate', '--from', `file:${dir}`], io), 2);
    assert.match(out, /vaquero migrate: usage: vaquero migrate --from/);
  });
});
