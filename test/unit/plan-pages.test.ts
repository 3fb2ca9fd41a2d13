// Issue 12, item 2: plans by reference. A 50,000-host site's plan is stored once and read by the
// rollout in parts, none of which (nor the carry a continue-as-new hands over) comes near Temporal's
// 256 KB payload warning.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { PART_BYTES, PlanPages } from '../../activities/plan-pages';
import { FileModelStore } from '../../activities/store/file-store';
import type { Model } from '../../schemas/model';
import { planKey, type SitePlan } from '../../schemas/plan';
import { HOST_STATE_CODES } from '../../schemas/rollout';
import { compactHosts, restoreHosts } from '../../workflows/rollout-plan';
import { RolloutState } from '../../workflows/rollout-state';

const KB = 1024;
const COMMIT = 'c0ffee0000000000000000000000000000000000';

/** 50,000 hosts in 50 waves of four groups, with reasons as long as the planner writes them. */
function bigPlan(hosts = 50_000): SitePlan {
  const groups = ['compute', 'storage', 'gpu', 'edge'];
  const waves: SitePlan['waves'] = [];
  for (let w = 0; w < 50; w++) {
    const list = [];
    for (let i = w * (hosts / 50); i < (w + 1) * (hosts / 50); i++)
      list.push({
        host: `node-${String(i).padStart(5, '0')}`,
        group: groups[i % 4]!,
        reasons: ['boot profile changed (kernel, initrd, cmdline)', 'ignition template changed'],
      });
    waves.push({ index: w + 1, canary: w === 0, groups, hosts: list });
  }
  return {
    site: 'dc1',
    name: 'Datacenter 1',
    approval_required: true,
    canary_size: 1,
    max_fail: 500,
    groups: groups.map((group) => ({
      group,
      hosts: hosts / 4,
      changed: hosts / 4,
      batch: 1_000,
      max_fail: 100,
      depends_on: [],
      reboot_windows: [],
    })),
    waves,
    unchanged: [],
    removed: [],
    skipped: [],
  };
}

async function pagesOver(t: { after(fn: () => Promise<void>): void }) {
  const dir = await mkdtemp(path.join(tmpdir(), 'plan-pages-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const store = new FileModelStore(dir);
  const noModel = (commit: string): Promise<Model> => Promise.reject(new Error(`no model ${commit}`));
  return { store, pages: new PlanPages(store, noModel) };
}

test('a 50,000-host plan is read back whole, in parts under the payload warning', async (t) => {
  const { store, pages } = await pagesOver(t);
  const plan = bigPlan();
  const key = planKey(COMMIT, 'dc1');
  await store.putPlan(key, plan);

  const seen: string[] = [];
  let parts = 0;
  let largest = 0;
  let offset: number | undefined = 0;
  while (offset !== undefined) {
    const part = await pages.part(key, offset);
    parts += 1;
    largest = Math.max(largest, JSON.stringify(part).length);
    if (offset === 0) {
      assert.equal(part.head?.waves.length, 50);
      assert.equal(part.head?.groups.length, 4);
      assert.equal(part.head?.approval_required, true);
    } else assert.equal(part.head, undefined, 'the head comes once');
    seen.push(...part.hosts.map((h) => h.host));
    offset = part.next;
  }
  assert.deepEqual(
    seen,
    plan.waves.flatMap((w) => w.hosts.map((h) => h.host)),
    'every host once, in plan order',
  );
  assert.ok(largest < 256 * KB, `largest part ${Math.round(largest / KB)} KB`);
  assert.ok(largest <= PART_BYTES + 16 * KB, `a part stays near PART_BYTES (${largest} bytes)`);
  assert.ok(parts >= 25 && parts <= 60, `${parts} parts`);
  t.diagnostic(`50,000-host plan: ${parts} parts, the largest ${Math.round(largest / KB)} KB`);
});

test('the carry of a 50,000-host rollout mid-way is far below 256 KB and restores every host', (t) => {
  const plan = bigPlan();
  const state = new RolloutState('dc1', COMMIT, plan);
  const names = plan.waves.flatMap((w) => w.hosts.map((h) => h.host));
  // Half done, 1,000 in flight, 300 failed (one retried), the rest pending.
  names.forEach((name, i) => {
    const h = state.host(name);
    if (i < 25_000) Object.assign(h, { state: 'succeeded', attempt: 1 });
    else if (i < 26_000) Object.assign(h, { state: 'running', attempt: 1 });
    else if (i < 26_300)
      Object.assign(h, {
        state: 'failed',
        attempt: i === 26_000 ? 2 : 1,
        failedAt: { stage: 1, step: 'dhcp' },
        error: `no dhcp event from 52:54:00:00:00:00 within 300 s ${'x'.repeat(2_000)}`,
      });
  });
  const carry = {
    run: 2,
    wave: 26,
    paused: false,
    approved: true,
    retries: [],
    inFlight: [],
    ...compactHosts(state),
  };
  const bytes = JSON.stringify(carry).length;
  assert.ok(bytes < 256 * KB, `carry ${Math.round(bytes / KB)} KB`);
  t.diagnostic(`carry of 50,000 hosts mid-way: ${Math.round(bytes / KB)} KB`);
  assert.equal(carry.states?.length, 50_000);

  const next = new RolloutState('dc1', COMMIT, plan);
  restoreHosts(next, carry);
  assert.equal(next.names('succeeded').length, 25_000);
  assert.equal(next.names('running').length, 1_000);
  assert.equal(next.names('failed').length, 300);
  assert.equal(next.names('pending').length, 23_700);
  assert.equal(next.host(names[26_000]!).attempt, 2);
  assert.deepEqual(next.host(names[26_001]!).failedAt, { stage: 1, step: 'dhcp' });
  assert.ok((next.host(names[26_001]!).error ?? '').length <= 200, 'errors are cut in the carry');
  assert.equal(next.host(names[40_000]!).attempt, 0);
  assert.equal(next.failures(), 300);
  assert.equal(next.failures('compute'), state.failures('compute'));
});

test('host states travel as one character each, and an unknown one leaves the host as it was', () => {
  assert.equal(new Set(Object.values(HOST_STATE_CODES)).size, Object.keys(HOST_STATE_CODES).length);
  const plan = bigPlan(200);
  const state = new RolloutState('dc1', COMMIT, plan);
  restoreHosts(state, {
    run: 2,
    wave: 1,
    paused: false,
    approved: false,
    retries: [],
    inFlight: [],
    states: '?',
  });
  assert.equal(state.host('node-00000').state, 'pending');
});

test('plan keys are checked: no path escapes, no odd characters', async (t) => {
  const { store } = await pagesOver(t);
  assert.throws(() => planKey(COMMIT, '../etc'), /invalid plan key/);
  await assert.rejects(store.getPlan('../../etc/passwd'), /invalid plan key/);
  await assert.rejects(store.putPlan(`${COMMIT}/dc1/..`, bigPlan(200)), /invalid plan key/);
  assert.equal(await store.getPlan(planKey(COMMIT, 'constructor')), undefined);
});
