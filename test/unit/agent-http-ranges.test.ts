import assert from 'node:assert/strict';
import { test } from 'node:test';
import { etagMatches, parseRange } from '../../agent/http/ranges';

test('byte ranges are parsed and clipped to the file', () => {
  assert.deepEqual(parseRange('bytes=0-9', 100), [{ start: 0, end: 9 }]);
  assert.deepEqual(parseRange('bytes=90-', 100), [{ start: 90, end: 99 }]);
  assert.deepEqual(parseRange('bytes=90-500', 100), [{ start: 90, end: 99 }]);
  assert.deepEqual(parseRange('bytes=-10', 100), [{ start: 90, end: 99 }]);
  assert.deepEqual(parseRange('bytes=-500', 100), [{ start: 0, end: 99 }]);
  assert.deepEqual(parseRange('bytes=0-1, 5-6', 100), [
    { start: 0, end: 1 },
    { start: 5, end: 6 },
  ]);
});

test('a range past the end is unsatisfiable, a malformed header is ignored', () => {
  assert.equal(parseRange('bytes=100-', 100), 'unsatisfiable');
  assert.equal(parseRange('bytes=200-300', 100), 'unsatisfiable');
  assert.equal(parseRange('bytes=-0', 100), 'unsatisfiable');
  assert.equal(parseRange('bytes=0-', 0), 'unsatisfiable');
  for (const header of ['items=0-1', 'bytes=', 'bytes=-', 'bytes=5-1', 'bytes=a-b', 'bytes=0-1,x'])
    assert.equal(parseRange(header, 100), undefined, header);
});

test('If-None-Match compares entity tags weakly and accepts *', () => {
  assert.ok(etagMatches('"a-1"', '"a-1"'));
  assert.ok(etagMatches('W/"a-1"', '"a-1"'));
  assert.ok(etagMatches('"x", "a-1"', '"a-1"'));
  assert.ok(etagMatches('*', '"a-1"'));
  assert.ok(!etagMatches('"a-2"', '"a-1"'));
});
