import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError, parseServerConfig, resolveSecrets, sourceDir } from '../../server/config';

const minimal = {
  sources: [
    {
      name: 'lab',
      kind: 'git',
      repo: '/srv/sot',
      path: 'sot',
      webhook_secret: { env: 'LAB_HOOK_SECRET' },
    },
    {
      name: 'prod',
      kind: 'github',
      repo: 'acme/datacenter',
      checkout: '/var/lib/vaquero/acme',
      branch: 'release',
      webhook_secret: { file: '/run/secrets/hook' },
    },
  ],
  api: { tokens: [{ name: 'ops', token: { env: 'VAQUERO_API_TOKEN' } }] },
};

describe('server config', () => {
  test('defaults fill what is left out; sources map to the directory the workflow reads', () => {
    const config = parseServerConfig(minimal);
    assert.deepEqual(config.listen, { host: '127.0.0.1', port: 8080 });
    assert.deepEqual(config.temporal, { address: '127.0.0.1:7233', namespace: 'default', setup: true });
    assert.equal(config.store.dir, './.vaquero/store');
    assert.equal(config.github.api_url, 'https://api.github.com');
    assert.equal(config.webhook_body_limit, 5 * 1024 * 1024);
    const [lab, prod] = config.sources;
    assert.ok(lab && prod);
    assert.equal(lab.branch, 'main');
    assert.equal(sourceDir(lab), '/srv/sot/sot');
    assert.equal(sourceDir(prod), '/var/lib/vaquero/acme');
  });

  test('every problem is reported at once, with its path', () => {
    const bad = {
      ...minimal,
      listen: { port: 99_999 },
      sources: [
        { ...minimal.sources[0], name: 'a b' },
        { ...minimal.sources[1], repo: 'not-owner-name', webhook_secret: 'inline' },
      ],
      api: { tokens: [] },
    };
    assert.throws(
      () => parseServerConfig(bad),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        for (const where of [
          'listen.port',
          'sources.0.name',
          'sources.1.repo',
          'sources.1.webhook_secret',
          'api.tokens',
        ])
          assert.match(err.message, new RegExp(`  ${where.replace(/\./g, '\\.')}: `), where);
        return true;
      },
    );
    assert.throws(
      () => parseServerConfig({ ...minimal, sources: [minimal.sources[0], minimal.sources[0]] }),
      /source names must be unique/,
    );
  });

  test('secrets come from the environment or files; a missing one stops start-up', async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'vaquero-config-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const hookFile = path.join(dir, 'hook');
    await writeFile(hookFile, 's3cret-from-file\n');
    const config = parseServerConfig({
      ...minimal,
      sources: [minimal.sources[0], { ...minimal.sources[1], webhook_secret: { file: hookFile } }],
    });
    const readers = { readFile: (f: string) => readFile(f, 'utf8') };
    const secrets = await resolveSecrets(config, {
      ...readers,
      env: { LAB_HOOK_SECRET: 'from-env', VAQUERO_API_TOKEN: 'tok' },
    });
    assert.deepEqual(
      [...secrets.webhooks],
      [
        ['lab', 'from-env'],
        ['prod', 's3cret-from-file'],
      ],
    );
    assert.deepEqual(secrets.apiTokens, [{ name: 'ops', token: 'tok' }]);
    await assert.rejects(
      resolveSecrets(config, { ...readers, env: { LAB_HOOK_SECRET: 'x', VAQUERO_API_TOKEN: '' } }),
      /api\.tokens\.ops: environment variable VAQUERO_API_TOKEN is unset or empty/,
    );
    await rm(hookFile);
    await assert.rejects(
      resolveSecrets(config, { ...readers, env: { LAB_HOOK_SECRET: 'x', VAQUERO_API_TOKEN: 'y' } }),
      /sources\.prod\.webhook_secret: cannot read/,
    );
  });
});
