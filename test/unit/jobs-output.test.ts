import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OUTPUT_LIMIT_BYTES, OutputCollector } from '../../activities/jobs/output';

const collect = (keep: 'head' | 'ends', ...chunks: string[]) => {
  const collector = new OutputCollector(keep);
  for (const chunk of chunks) collector.push(chunk);
  return collector.toString();
};

test('output up to 4 KiB is kept whole', () => {
  const text = 'a'.repeat(OUTPUT_LIMIT_BYTES);
  assert.equal(collect('ends', text.slice(0, 100), text.slice(100)), text);
  assert.equal(collect('head', text), text);
});

test('one byte over the limit is cut, marker included, within 4 KiB', () => {
  for (const keep of ['head', 'ends'] as const) {
    const out = collect(keep, 'b'.repeat(OUTPUT_LIMIT_BYTES + 1));
    assert.ok(Buffer.byteLength(out) <= OUTPUT_LIMIT_BYTES, `${keep}: ${Buffer.byteLength(out)} bytes`);
    const omitted = Number(/\[\.\.\. (\d+)/.exec(out)?.[1]);
    assert.equal(out.replace(/\n\[\.\.\. .*\.\.\.\]\n?/, '').length + omitted, OUTPUT_LIMIT_BYTES + 1);
  }
});

test('multi-byte characters are never split at a cut', () => {
  const out = collect('ends', 'é'.repeat(5000), '→'.repeat(3000));
  assert.ok(Buffer.byteLength(out) <= OUTPUT_LIMIT_BYTES);
  assert.doesNotMatch(out, /\uFFFD/);
  assert.match(out, /^é+\n\[\.\.\. \d+ bytes truncated \.\.\.\]\n→+$/);
});
