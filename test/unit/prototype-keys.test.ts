// Names that are members of Object.prototype (`constructor`, `__proto__`, `toString`, ...) as ids,
// directories, template names and commands: each is a clear error, never a crash or a built-in.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { FileModelStore } from '../../activities/store/file-store';
import { createAssetApp } from '../../agent/http/app';
import { validateSot } from '../../sot/validate';
import { own } from '../../schemas/common';
import { materialize, removeSot, runCli, sotMin } from '../helpers/sot';

const PROTOTYPE_KEYS = [...Object.getOwnPropertyNames(Object.prototype), 'prototype'];

async function sot(t: TestContext): Promise<string> {
  const dir = await materialize();
  t.after(() => removeSot(dir));
  return dir;
}

async function edit(dir: string, rel: string, from: RegExp, to: string): Promise<void> {
  const file = path.join(dir, rel);
  const text = await readFile(file, 'utf8');
  assert.match(text, from, `${rel} has ${from}`);
  await writeFile(file, text.replace(from, to));
}

async function validate(dir: string) {
  const r = await runCli(['validate', dir]);
  assert.doesNotMatch(r.err, /^ {4}at /m, `no stack trace:\n${r.err}`);
  assert.doesNotMatch(r.err, /internal error/, r.err);
  return r;
}

describe('prototype keys', () => {
  test('own() sees only a record’s own entries', () => {
    const record: Record<string, number> = { a: 1 };
    for (const key of [...PROTOTYPE_KEYS, '__proto__']) assert.equal(own(record, key), undefined, key);
    assert.equal(own(record, 'a'), 1);
    assert.equal(own(JSON.parse('{"__proto__": 5}') as Record<string, number>, '__proto__'), 5);
  });

  test('the file store keeps a rollout under any site name and finds none under a built-in', async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'vaquero-proto-store-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const store = new FileModelStore(dir);
    for (const key of PROTOTYPE_KEYS) assert.equal(await store.getActiveRollout(key), undefined, key);
    const rollout = { workflowId: 'rollout/x/abcdef1', commit: 'abcdef1' };
    await store.setActiveRollout('__proto__', rollout);
    assert.deepEqual(await new FileModelStore(dir).getActiveRollout('__proto__'), rollout);
    assert.equal(await store.getActiveRollout('toString'), undefined, 'no prototype was replaced');
  });

  test('every prototype key as a MAC, stage, token or file of the agent’s boot HTTP is a 4xx', async (t) => {
    const { model } = await validateSot(sotMin);
    assert.ok(model);
    const dir = await mkdtemp(path.join(tmpdir(), 'vaquero-proto-agent-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const events: unknown[] = [];
    const app = createAssetApp({
      models: { forCommit: () => Promise.resolve(model), current: () => model },
      site: 'lab1',
      netboot: { lookup: () => Promise.resolve(undefined), list: () => Promise.resolve([]) },
      events: { emit: (e) => void events.push(e) },
      filesDir: dir,
      log: () => undefined,
    });
    const failures: string[] = [];
    for (const key of [...PROTOTYPE_KEYS, '__proto__']) {
      const k = encodeURIComponent(key);
      for (const url of [
        `/ipxe/${k}`,
        `/unattended/${k}/1/${k}`,
        `/unattended/52:54:00:10:00:01/${k}/${k}/meta-data`,
        `/checkpoint/${k}/${k}/${k}`,
        `/files/${k}?mac=${k}&token=${k}`,
      ]) {
        const res = await app.request(url);
        // An unarmed or unknown MAC gets the boot-from-disk script: 200 is right for /ipxe/.
        if (res.status >= 500 || (res.status === 200 && !url.startsWith('/ipxe/')))
          failures.push(`${url}: ${res.status}`);
      }
    }
    assert.deepEqual(failures, []);
    assert.deepEqual(events, [], 'no boot event from any of them');
  });

  const idCases: [string, string, RegExp, string][] = [
    ['a site id', 'sites/lab1/site.yaml', /^id: lab1$/m, 'id: constructor'],
    ['a host name', 'sites/lab1/hosts/core.yaml', /^name: core-01$/m, 'name: constructor'],
    ['a host group id', 'workflows/core.yaml', /^id: core$/m, 'id: constructor'],
    ['an os id', 'os/flatcar.yaml', /^id: flatcar$/m, 'id: constructor'],
    ['a boot profile id', 'boot/core.yaml', /^id: flatcar-core$/m, 'id: constructor'],
  ];
  for (const [what, rel, from, to] of idCases) {
    test(`constructor as ${what} is refused by name`, async (t) => {
      const dir = await sot(t);
      await edit(dir, rel, from, to);
      const r = await validate(dir);
      assert.equal(r.code, 1);
      assert.match(r.err, /constructor.*|.*built-in name of JavaScript objects/);
      assert.match(r.err, /is a built-in name of JavaScript objects; choose another id/);
    });
  }

  test('every prototype key as a site directory is a clear problem', async (t) => {
    for (const key of PROTOTYPE_KEYS) {
      const dir = await sot(t);
      await rename(path.join(dir, 'sites/lab1'), path.join(dir, 'sites', key));
      const r = await validate(dir);
      assert.equal(r.code, 1, `${key}: ${r.err}`);
      assert.match(r.err, new RegExp(`sites/${key.replace(/\$/g, '\\$')}/`), key);
    }
  });

  test('every prototype key as an included template is "template not found"', async (t) => {
    for (const key of PROTOTYPE_KEYS) {
      const dir = await sot(t);
      await edit(dir, 'assets/ignition/core.ign.j2', /^/, `{% include "${key}" %}\n`);
      const r = await validate(dir);
      assert.equal(r.code, 1, `${key}: ${r.err}`);
      assert.match(r.err, new RegExp(`template not found: assets/${key}`), key);
    }
  });

  test('every prototype key as a command or rollout subcommand is a usage error', async () => {
    for (const key of PROTOTYPE_KEYS) {
      const command = await runCli([key]);
      assert.equal(command.code, 2, key);
      assert.match(command.err, new RegExp(`unknown command "${key}"`));
      const sub = await runCli(['rollout', key]);
      assert.equal(sub.code, 2, key);
      assert.match(sub.err, new RegExp(`unknown subcommand "${key}"`));
    }
  });
});
