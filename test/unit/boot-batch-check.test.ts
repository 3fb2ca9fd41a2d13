// The host workflow checks a `boot-events` batch by hand (schemas/runtime.ts: workflow code stays free
// of zod, whose schema construction cost most of a host workflow's CPU). It must answer as the zod
// schema does, for good batches and bad ones, including what it keeps of each.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BootEventBatchSchema, MAX_BATCH_EVENTS } from '../../schemas/rollout';
import { checkBootEventBatch } from '../../schemas/runtime';

const at = '2026-12-07T10:00:00.000Z';
const ev = (over: Record<string, unknown> = {}) => ({ kind: 'dhcp', mac: '52:54:00:00:00:01', at, ...over });

const cases: [string, unknown][] = [
  ['one event', { events: [ev()] }],
  ['every optional field', { events: [ev({ stage: 2, detail: 'REQUEST', reported: false })] }],
  ['disarmed', { events: [ev({ kind: 'checkpoint' })], disarmed: { stage: 1, at } }],
  ['unknown keys dropped', { events: [ev({ extra: 1, __proto__: { x: 1 } })], more: true }],
  ['the most events', { events: Array.from({ length: MAX_BATCH_EVENTS }, () => ev()) }],
  ['too many events', { events: Array.from({ length: MAX_BATCH_EVENTS + 1 }, () => ev()) }],
  ['no events', { events: [] }],
  ['events not a list', { events: { 0: ev() } }],
  ['not an object', 'dhcp'],
  ['null', null],
  ['a list', [ev()]],
  ['unknown kind', { events: [ev({ kind: 'pxe' })] }],
  ['kind constructor', { events: [ev({ kind: 'constructor' })] }],
  ['mac not a string', { events: [ev({ mac: 5 })] }],
  ['no time', { events: [{ kind: 'dhcp', mac: 'm' }] }],
  ['stage 0', { events: [ev({ stage: 0 })] }],
  ['stage 1.5', { events: [ev({ stage: 1.5 })] }],
  ['stage a string', { events: [ev({ stage: '1' })] }],
  ['stage unsafe', { events: [ev({ stage: 2 ** 60 })] }],
  ['detail a number', { events: [ev({ detail: 1 })] }],
  ['reported true', { events: [ev({ reported: true })] }],
  ['disarmed without a time', { events: [ev()], disarmed: { stage: 1 } }],
  ['disarmed stage 0', { events: [ev()], disarmed: { stage: 0, at } }],
  ['disarmed null', { events: [ev()], disarmed: null }],
  ['an event null', { events: [null] }],
];

test('the hand-written boot batch check answers as the zod schema does', () => {
  for (const [name, input] of cases) {
    const zod = BootEventBatchSchema.safeParse(input);
    const mine = checkBootEventBatch(input);
    assert.equal(mine.ok, zod.success, `${name}: accepted by zod ${zod.success}, by the check ${mine.ok}`);
    if (mine.ok && zod.success) assert.deepEqual(mine.value, zod.data, `${name}: what is kept`);
    if (!mine.ok) assert.ok(mine.error.length > 0, `${name}: a reason`);
  }
});
