// Which agent of a site an agent is at start (issue 13): a second agent of a broadcast domain used to
// take the first agent's entry, and so its address as its DHCP server identifier.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { agentEntry, checkBootAddress, ServiceConfigError } from '../../agent/agent-entry';
import type { Model } from '../../schemas/model';
import { validateSot } from '../../sot/validate';
import { materialize, removeSot, repoRoot, sotMin } from '../helpers/sot';

let racks: Model;
let single: Model;
let dir: string;

before(async () => {
  dir = await materialize(path.join(repoRoot, 'test/fixtures/racks'));
  const [a, b] = await Promise.all([validateSot(dir), validateSot(sotMin)]);
  assert.ok(a.model && b.model);
  racks = a.model;
  single = b.model;
});
after(() => removeSot(dir));

test('without --agent-name, a site of several agents is told apart by the boot address, or refused', () => {
  assert.equal(agentEntry(single, 'lab1', undefined, undefined).name, 'lab1-agent');
  assert.equal(agentEntry(racks, 'lab1', undefined, '10.10.0.6').name, 'lab1-agent-b');
  assert.equal(agentEntry(racks, 'lab1', 'lab1-rack2-agent', undefined).name, 'lab1-rack2-agent');
  assert.throws(
    () => agentEntry(racks, 'lab1', undefined, undefined),
    (err: Error) =>
      err instanceof ServiceConfigError &&
      err.message ===
        'site lab1 has 3 agents (lab1-agent, lab1-agent-b, lab1-rack2-agent): pass --agent-name',
  );
  assert.throws(() => agentEntry(racks, 'lab1', 'lab1-c', undefined), /has no agent named lab1-c/);
});

test('a boot address that is not on the boot interface is refused in one line', () => {
  assert.doesNotThrow(() => checkBootAddress(['lo'], '127.0.0.1'));
  assert.throws(
    () => checkBootAddress(['lo'], '10.10.0.5'),
    (err: Error) =>
      err instanceof ServiceConfigError &&
      /^the boot address 10\.10\.0\.5 is not on lo \(it has 127\.0\.0\.1\): pass --boot-address or --agent-name$/.test(
        err.message,
      ),
  );
  assert.throws(
    () => checkBootAddress(['vq-none0'], '10.10.0.5'),
    /^Error: boot interface vq-none0 does not exist$/,
  );
});
