import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const script = fileURLToPath(new URL('../../scripts/bundle-workflows.ts', import.meta.url));
const fixture = fileURLToPath(new URL('../fixtures/workflow-imports-builtin/index.ts', import.meta.url));

test('bundling fails when a workflow reaches a Node built-in through a helper', () => {
  const run = spawnSync(process.execPath, ['--import', 'tsx', script, fixture], { encoding: 'utf8' });

  assert.equal(run.error, undefined);
  assert.notEqual(run.status, 0, 'bundle-workflows must exit non-zero');
  assert.match(run.stderr, /node:path/, 'the output names the offending import');
  assert.doesNotMatch(run.stdout, /wrote/);
});
