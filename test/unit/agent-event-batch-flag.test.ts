// `vaquero agent --event-batch-ms`: how long a host's boot events gather into one signal. A bad value
// is one clear line and exit code 2 from the real process, never a crash at the first boot.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { agentConfig } from '../../agent/args';
import { repoRoot } from '../helpers/sot';

const base = ['--site', 'fra1', '--state-dir', '/nonexistent/vq-batch-flag'];

test('the batch window is 2 s unless the flag says otherwise, and at most 2 s', () => {
  assert.equal(agentConfig(base, {}).eventBatchMs, 2_000);
  assert.equal(agentConfig([...base, '--event-batch-ms', '500'], {}).eventBatchMs, 500);
  assert.throws(() => agentConfig([...base, '--event-batch-ms', '60000'], {}), /at most 2000 ms/);
  assert.throws(() => agentConfig([...base, '--event-batch-ms=-1'], {}), /eventBatchMs/);
});

test('the real agent refuses a window that is not a number: one line, exit code 2', async () => {
  const child = spawn(process.execPath, ['bin/vaquero.mjs', 'agent', ...base, '--event-batch-ms', 'soon'], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  assert.equal(code, 2, err);
  assert.match(err, /eventBatchMs: the event batch window must be a number of ms/);
  assert.equal(err.trim().split('\n').length, 1, err);
});
