// Temporal lets one workflow have at most 2,000 pending children. A group's max_concurrent is
// refused above that by `vaquero validate`; groups that do not depend on each other run side by
// side, and their batches together may exceed it: the rollout keeps the whole site under the cap.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_CONCURRENT } from '../../schemas/host-group';
import type { SitePlan } from '../../schemas/plan';
import { RolloutState } from '../../workflows/rollout-state';

function twoGroups(batch: number, hosts: number): SitePlan {
  const groups = ['compute', 'storage'];
  const list = Array.from({ length: hosts }, (_, i) => ({
    host: `n-${i}`,
    group: groups[i % 2]!,
    reasons: ['boot profile changed'],
  }));
  return {
    site: 'dc1',
    name: 'dc1',
    approval_required: false,
    canary_size: 0,
    max_fail: 10,
    groups: groups.map((group) => ({
      group,
      hosts: hosts / 2,
      changed: hosts / 2,
      batch,
      max_fail: 5,
      depends_on: [],
      reboot_windows: [],
    })),
    waves: [{ index: 1, canary: false, groups, hosts: list }],
    unchanged: [],
    removed: [],
    skipped: [],
  };
}

test('two independent groups of max_concurrent 1,500 never have more than 2,000 hosts in flight', () => {
  const state = new RolloutState('dc1', 'abc', twoGroups(1_500, 4_000));
  let started = 0;
  for (let i = 0; i < 4_000; i++) {
    const group = i % 2 === 0 ? 'compute' : 'storage';
    if (!state.hasSlot(group)) continue;
    state.begin(group);
    started += 1;
  }
  assert.equal(started, MAX_CONCURRENT);
  assert.equal(state.inFlight(), 2_000);
  assert.equal(state.hasSlot('compute'), false);
  state.end('storage');
  assert.equal(state.hasSlot('compute'), true, 'a freed slot of any group opens the site again');
  assert.equal(state.hasSlot('storage'), true);
});

test("a group's own batch still bounds it below the site's cap", () => {
  const state = new RolloutState('dc1', 'abc', twoGroups(100, 400));
  for (let i = 0; i < 100; i++) state.begin('compute');
  assert.equal(state.hasSlot('compute'), false);
  assert.equal(state.hasSlot('storage'), true);
});

test('failures are counted again after every change of a host', () => {
  const state = new RolloutState('dc1', 'abc', twoGroups(10, 40));
  state.retriesCount = true;
  assert.equal(state.failures(), 0);
  Object.assign(state.host('n-0'), { state: 'failed', attempt: 1 });
  state.end('compute');
  assert.equal(state.failures(), 1);
  assert.equal(state.failures('compute'), 1);
  assert.equal(state.failures('storage'), 0);
  Object.assign(state.host('n-0'), { state: 'running', attempt: 2 });
  state.touch();
  assert.equal(state.failures(), 1, 'a retry in flight counts until it succeeds');
  Object.assign(state.host('n-0'), { state: 'succeeded' });
  state.end('compute');
  assert.equal(state.failures(), 0);
  assert.match(state.budgetSpent() ?? 'none', /none/);
});
