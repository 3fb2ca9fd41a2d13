// The registry's bounds with a clock the test moves: per site, in total, and forgetting silent agents.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AgentRegistryFullError, createAgentRegistry } from '../../server/agent-registry';

const beat = (site: string, agent: string) => ({ site, agent, version: '0.1.0' });

test('site-token names are bounded per site and in total; own-token agents are not', () => {
  let at = 0;
  const registry = createAgentRegistry({ silentAfterMs: 1_000, maxPerSite: 2, maxTotal: 3, now: () => at });
  registry.heartbeat(beat('fra1', 'a'), 'fra1-site');
  registry.heartbeat(beat('fra1', 'b'), 'fra1-site');
  assert.throws(() => registry.heartbeat(beat('fra1', 'c'), 'fra1-site'), AgentRegistryFullError);
  registry.heartbeat(beat('fra1', 'a'), 'fra1-site');
  registry.heartbeat(beat('fra1', 'own'), 'fra1-own', 'agent');
  registry.heartbeat(beat('iad1', 'x'), 'iad1-site');
  assert.throws(() => registry.heartbeat(beat('iad1', 'y'), 'iad1-site'), /3 agents .*agents\.max_agents\)/);
  assert.deepEqual(
    registry.sites().map((s) => [s.site, s.agents.map((a) => `${a.agent}:${a.identity}`)]),
    [
      ['fra1', ['a:site', 'b:site', 'own:agent']],
      ['iad1', ['x:site']],
    ],
  );
  at += 1_500;
  assert.equal(registry.site('fra1').state, 'unreachable');
});

test('an agent silent past forgetAfterMs is dropped and frees its place; the site stays unreachable', () => {
  let at = 0;
  const registry = createAgentRegistry({
    silentAfterMs: 1_000,
    forgetAfterMs: 5_000,
    maxPerSite: 1,
    now: () => at,
  });
  assert.equal(registry.site('fra1').state, 'unknown');
  registry.heartbeat(beat('fra1', 'old'), 'fra1-site');
  at += 4_000;
  assert.throws(() => registry.heartbeat(beat('fra1', 'new'), 'fra1-site'), /site fra1 already has 1 agents/);
  at += 1_001;
  assert.deepEqual(registry.site('fra1'), { site: 'fra1', state: 'unreachable', agents: [] });
  assert.deepEqual(
    registry.sites().map((s) => s.site),
    [],
  );
  registry.heartbeat(beat('fra1', 'new'), 'fra1-site');
  assert.equal(registry.site('fra1').state, 'reachable');
});
