// Validate and plan at scale (issue 12): time grows linearly with the hosts, and 20,000 hosts take
// seconds, not the minute they took when every template was compiled per host, hosts were looked up
// with scans of all hosts, and every hosts file was parsed into YAML documents kept to the end.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { writeBigSot } from '../../scripts/bench/lib/big-sot';
import { planChanges } from '../../sot/plan';
import { validateSot } from '../../sot/validate';

let work: string;

before(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'vaquero-sot-scale-'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

/** CPU seconds (this process, every thread) to validate both trees and plan the release change. */
async function validateAndPlan(hosts: number): Promise<{ seconds: number; changed: number }> {
  const from = path.join(work, `from-${hosts}`);
  const to = path.join(work, `to-${hosts}`);
  await writeBigSot(from, hosts, '4081.2.0');
  await writeBigSot(to, hosts, '4152.2.1');
  const cpu = process.cpuUsage();
  const [oldResult, newResult] = [await validateSot(from), await validateSot(to)];
  assert.deepEqual([oldResult.diagnostics, newResult.diagnostics], [[], []]);
  assert.ok(oldResult.model && newResult.model);
  const plan = planChanges(oldResult.model, newResult.model, 'from', 'to');
  const used = process.cpuUsage(cpu);
  const changed = plan.sites.reduce((n, s) => n + s.waves.reduce((m, w) => m + w.hosts.length, 0), 0);
  return { seconds: (used.user + used.system) / 1e6, changed };
}

describe('validate and plan at scale', () => {
  test('20,000 hosts in seconds, time linear in the hosts', async () => {
    await validateAndPlan(1000); // warm-up: module loading and the JIT are not what is measured
    const small = await validateAndPlan(5000);
    const big = await validateAndPlan(20_000);
    assert.equal(small.changed, 5000, 'the release change reprovisions every host');
    assert.equal(big.changed, 20_000);
    const ratio = big.seconds / small.seconds;
    assert.ok(
      big.seconds < 20,
      `validating two trees of 20,000 hosts and planning took ${big.seconds} s of CPU`,
    );
    assert.ok(
      ratio < 6,
      `4x the hosts took ${ratio.toFixed(1)}x the CPU (${small.seconds} s, ${big.seconds} s)`,
    );
  });
});
