// POST /api/v1/apply's body: a revision is handed to git, so it can never be read as an option.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApplyRequestSchema } from '../../schemas/applied';

test('an apply request names a revision, never a git option', () => {
  for (const commit of ['a1b2c3d', 'v1.2.0', 'release/2026-12', 'a'.repeat(40)])
    assert.ok(ApplyRequestSchema.safeParse({ commit }).success, commit);
  for (const commit of ['--upload-pack=touch /tmp/x', '-x', '', 'a b', 'a;b', 'x'.repeat(201)])
    assert.ok(!ApplyRequestSchema.safeParse({ commit }).success, commit);
  assert.ok(!ApplyRequestSchema.safeParse({ commit: 'a1b2c3d', surprise: 1 }).success, 'strict');
});
