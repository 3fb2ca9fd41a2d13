import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LogSampler } from '../../agent/log-sampler';

const summary = (kind: string, suppressed: number) => `${kind}: ${suppressed} suppressed`;

test('per kind and interval: the first lines, then one summary when the interval is over', () => {
  const out: string[] = [];
  let now = 0;
  const sampler = new LogSampler<string>((line) => out.push(line), {
    perInterval: 3,
    intervalMs: 1000,
    summary,
    now: () => now,
  });
  for (let i = 0; i < 100; i++) sampler.log('unknown-mac', `u${i}`);
  sampler.log('malformed', 'm0');
  assert.deepEqual(out, ['u0', 'u1', 'u2', 'm0']);
  now = 1000;
  sampler.log('unknown-mac', 'u100');
  assert.deepEqual(out.slice(4), ['unknown-mac: 97 suppressed', 'u100']);
  sampler.flush();
  assert.equal(out.length, 6, 'no summary for a kind that lost nothing');
});

test('the summary comes when the flood stops, without another line of its kind', async () => {
  const out: string[] = [];
  const sampler = new LogSampler<string>((line) => out.push(line), {
    perInterval: 1,
    intervalMs: 50,
    summary,
  });
  for (let i = 0; i < 10; i++) sampler.log('unknown-mac', `u${i}`);
  await new Promise((resolve) => setTimeout(resolve, 120));
  assert.deepEqual(out, ['u0', 'unknown-mac: 9 suppressed']);
  sampler.flush();
  assert.equal(out.length, 2);
});
