// The lab's second agent and relayed rack (cli/lab/rack.ts): Linux refuses interface names over 15
// characters, so every name made for the longest prefix `lab --prefix` accepts must fit; dhcrelay
// forwards the rack's requests to both agents.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AGENT_ADDRESS, labNames } from '../../cli/lab/network';
import { AGENT_B_ADDRESS, dhcrelayArgv, rackNames } from '../../cli/lab/rack';

test('rack and agent B interface names fit in 15 characters for the longest lab prefix', () => {
  const r = rackNames(labNames('abcdefgh'));
  for (const name of [
    r.agentBIf,
    r.agentBLabIf,
    r.relayUp,
    r.relayUpLab,
    r.relayDown,
    r.relayDownLab,
    r.rackBridge,
  ])
    assert.ok(name.length <= 15, `${name} is ${name.length} characters`);
  assert.equal(new Set(Object.values(r)).size, Object.values(r).length, 'names are distinct');
});

test('dhcrelay listens on the rack downstream and the lab upstream, and forwards to both agents', () => {
  const r = rackNames(labNames('vql'));
  const argv = dhcrelayArgv(r, '/run/x.pid');
  assert.deepEqual(argv.slice(0, 4), ['ip', 'netns', 'exec', 'vql-relay']);
  assert.deepEqual(argv.slice(-6), ['-id', 'vql-rdn', '-iu', 'vql-rup', AGENT_ADDRESS, AGENT_B_ADDRESS]);
});
