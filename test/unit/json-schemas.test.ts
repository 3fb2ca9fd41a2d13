import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { test } from 'node:test';
import { sotJsonSchemas } from '../../schemas/json-schema';

const dir = new URL('../../schemas/json/', import.meta.url);

test('the JSON Schema files for editors are up to date (npm run schemas)', async () => {
  const expected = sotJsonSchemas();
  const files = (await readdir(dir)).filter((f) => f.endsWith('.schema.json')).sort();
  assert.deepEqual(
    files,
    Object.keys(expected)
      .map((n) => `${n}.schema.json`)
      .sort(),
  );
  for (const [name, schema] of Object.entries(expected)) {
    const onDisk = JSON.parse(await readFile(new URL(`${name}.schema.json`, dir), 'utf8')) as unknown;
    assert.deepEqual(
      onDisk,
      JSON.parse(JSON.stringify(schema)),
      `${name}.schema.json is stale: run npm run schemas`,
    );
  }
});

test('the host schema refuses a plaintext BMC password and names the secret forms', () => {
  const host = sotJsonSchemas().host as { properties: { bmc: { oneOf?: unknown[]; anyOf?: unknown[] } } };
  const text = JSON.stringify(host.properties.bmc);
  assert.match(text, /"env"/);
  assert.match(text, /"file"/);
  assert.doesNotMatch(text, /"password":\{"type":"string"/);
});
