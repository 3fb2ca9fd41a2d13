// Build ids and deployment names of `vaquero server` and `vaquero agent` (docs/operations/upgrades.md):
// the default is the package version plus the git commit; a name Temporal would refuse is a clear
// error at start, exit code 2, never a worker that fails later.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { deploymentVersion, defaultBuildId, SERVER_DEPLOYMENT } from '../../activities/build-id';
import { agentConfig } from '../../agent/args';
import { repoRoot, runCli } from '../helpers/sot';

test('the default build id is the package version plus the commit of the checkout', async () => {
  const { version } = JSON.parse(await readFile(path.join(repoRoot, 'package.json'), 'utf8')) as {
    version: string;
  };
  const commit = execFileSync('git', ['-C', repoRoot, 'rev-parse', '--short=12', 'HEAD'], {
    encoding: 'utf8',
  });
  assert.equal(defaultBuildId({}), `${version}+${commit.trim()}`);
  // An image built without .git says its commit in $VAQUERO_COMMIT.
  assert.equal(defaultBuildId({ VAQUERO_COMMIT: 'abc123' }), `${version}+abc123`);
});

test('deployment names and build ids Temporal would refuse are refused with the reason', () => {
  assert.deepEqual(deploymentVersion(SERVER_DEPLOYMENT, '0.2.0+rc.1'), {
    deploymentName: 'vaquero-server',
    buildId: '0.2.0+rc.1',
  });
  assert.throws(() => deploymentVersion('vaquero.server', 'x'), /Temporal refuses '\.'/);
  assert.throws(() => deploymentVersion('vaquero-server', 'two words'), /build id "two words"/);
  assert.throws(() => deploymentVersion('vaquero-server', ''), /1 to 200 characters/);
  assert.throws(() => deploymentVersion('constructor', 'x'.repeat(201)), /1 to 200 characters/);
});

test('vaquero agent takes --build-id and --deployment, else VAQUERO_BUILD_ID, else the default', () => {
  const base = ['--site', 'fra1', '--state-dir', '/nonexistent/vq-build-id'];
  assert.equal(agentConfig(base, {}).deployment, 'vaquero-agent');
  assert.equal(agentConfig(base, {}).buildId, undefined);
  assert.equal(agentConfig(base, { VAQUERO_BUILD_ID: '0.2.0' }).buildId, '0.2.0');
  const flags = agentConfig([...base, '--build-id', '0.3.0', '--deployment', 'agents-fra1'], {
    VAQUERO_BUILD_ID: '0.2.0',
  });
  assert.deepEqual([flags.deployment, flags.buildId], ['agents-fra1', '0.3.0']);
  assert.throws(() => agentConfig([...base, '--deployment', 'a.b'], {}), /deployment: letters, digits/);
  assert.throws(() => agentConfig([...base, '--build-id', 'a b'], {}), /build id: letters, digits/);
});

test('vaquero server refuses a bad --deployment or --build-id before it connects: exit code 2', async () => {
  const dotted = await runCli(['server', '--config', 'nonexistent.yaml', '--deployment', 'vaquero.server']);
  assert.equal(dotted.code, 2, dotted.err);
  assert.match(dotted.err, /deployment "vaquero.server": .*Temporal refuses '\.'/);
  const spaced = await runCli(['server', '--config', 'nonexistent.yaml', '--build-id', 'a b']);
  assert.equal(spaced.code, 2, spaced.err);
  assert.match(spaced.err, /build id "a b"/);
  assert.match(spaced.err, /--make-current/, 'the usage says how a version becomes current');
});
