// The agent's netboot table writes the whole table per change; changes made while a write waits to
// start share the next write (a batch of 200 hosts armed at once is one write, not 200). Each arm
// and disarm must still be on disk when it resolves: an agent restart right after must see it.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { NetbootTable } from '../../agent/state/netboot-table';
import type { ArmEntry } from '../../schemas/agent';

const entry = (i: number): ArmEntry => ({
  mac: `52:54:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`,
  site: 's',
  host: `n${i}`,
  commit: 'c'.repeat(40),
  stage: 1,
  workflowId: `host/s/n${i}/ccccccc`,
  armedAt: new Date(1_700_000_000_000 + i).toISOString(),
  token: `token-of-host-${String(i).padStart(8, '0')}`,
});

test('arms and disarms made at once are each on disk when they resolve', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'vq-netboot-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'netboot.json');
  const onDisk = async () =>
    new Set((JSON.parse(await readFile(file, 'utf8')) as ArmEntry[]).map((e) => e.mac));
  const table = new NetbootTable(file);
  await Promise.all(
    Array.from({ length: 200 }, async (_, i) => {
      await table.arm(entry(i));
      assert.ok((await onDisk()).has(entry(i).mac), `arm ${i} resolved before it was written`);
    }),
  );
  await Promise.all(
    Array.from({ length: 100 }, async (_, i) => {
      assert.equal(await table.disarm(entry(i).mac, entry(i).workflowId), true);
      assert.ok(!(await onDisk()).has(entry(i).mac), `disarm ${i} resolved before it was written`);
    }),
  );
  // A new agent process reads what the last write left: the 100 still armed, in full.
  const again = new NetbootTable(file);
  const left = await again.list();
  assert.equal(left.length, 100);
  assert.deepEqual(await again.lookup(entry(150).mac), entry(150));
});
