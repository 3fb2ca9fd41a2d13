// Where a retry of a failed host resumes: a failed boot step (the image step too) from its arming,
// since a host only boots after a power cycle; other steps where they failed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resumeStep } from '../../workflows/host-failure';

test('a failed boot step resumes from the arming; other steps where they failed', () => {
  for (const step of ['power-cycle', 'dhcp', 'ipxe', 'kernel', 'image', 'checkpoint'] as const)
    assert.equal(resumeStep(step), 'arm', step);
  for (const step of ['pre-shutdown', 'arm', 'disarm', 'validation'] as const)
    assert.equal(resumeStep(step), step, step);
});
