import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

// The probes are linted as if they sat at paths that do not exist, which the type-aware project
// service refuses; the layer zones need no types, and import/no-cycle would only slow this down.
const eslint = new ESLint({
  cwd: repoRoot,
  overrideConfig: [tseslint.configs.disableTypeChecked, { rules: { 'import/no-cycle': 'off' } }],
});

async function layerErrors(file: string, specifier: string): Promise<string[]> {
  // An import that does not resolve is never checked by the rule, so an allowed case would pass
  // vacuously if its target were moved.
  const target = path.resolve(repoRoot, path.dirname(file), `${specifier}.ts`);
  assert.ok(existsSync(target), `probe target ${target} exists`);
  const code = `import { probe } from '${specifier}';\nexport const used = probe;\n`;
  const [result] = await eslint.lintText(code, { filePath: path.join(repoRoot, file) });
  assert.ok(result, `ESLint returned a result for ${file}`);
  return result.messages.filter((m) => m.ruleId === 'import/no-restricted-paths').map((m) => m.message);
}

const forbidden: [file: string, specifier: string, rule: RegExp][] = [
  ['server/http/x.ts', '../../cli/io', /server\/ never imports agent\/ or cli\//],
  ['server/x.ts', '../agent/worker', /server\/ never imports agent\/ or cli\//],
  ['agent/x.ts', '../server/config', /agent\/ never imports server\/ or cli\//],
  ['agent/dhcp/x.ts', '../../cli/main', /agent\/ never imports server\/ or cli\//],
  ['activities/x.ts', '../agent/state/netboot-table', /activities\/ sit below agent\//],
  ['activities/store/x.ts', '../../workflows/messages', /activities\/ sit below/],
  ['sot/x.ts', '../activities/store/model-store', /sot\/ imports only schemas\/ and sot\//],
  ['sot/x.ts', '../test/helpers/sot', /sot\/ imports only schemas\/ and sot\//],
  ['schemas/x.ts', '../sot/load', /schemas\/ imports nothing of the project but schemas\//],
  ['cli/x.ts', '../test/helpers/sot', /product code never imports scripts\/ or test\//],
  ['agent/x.ts', '../scripts/bench/lib/model', /product code never imports scripts\/ or test\//],
  ['server/x.ts', '../test/helpers/temporal', /product code never imports scripts\/ or test\//],
  ['workflows/x.ts', '../test/helpers/sot', /product code never imports scripts\/ or test\//],
];

const allowed: [file: string, specifier: string][] = [
  ['cli/x.ts', '../server/config'],
  ['cli/x.ts', '../agent/worker'],
  ['agent/x.ts', '../activities/agent-activities'],
  ['server/x.ts', '../activities/server-activities'],
  ['activities/x.ts', '../sot/load'],
  ['sot/x.ts', '../schemas/host'],
  ['test/unit/x.ts', '../../cli/io'],
  ['test/unit/x.ts', '../../scripts/bench/lib/model'],
  ['test/unit/x.ts', '../helpers/sot'],
];

for (const [file, specifier, rule] of forbidden) {
  test(`lint forbids ${file} importing ${specifier}`, async () => {
    const errors = await layerErrors(file, specifier);
    assert.equal(errors.length, 1, `one layer error, got ${JSON.stringify(errors)}`);
    assert.match(errors[0] ?? '', rule);
  });
}

for (const [file, specifier] of allowed) {
  test(`lint allows ${file} importing ${specifier}`, async () => {
    assert.deepEqual(await layerErrors(file, specifier), []);
  });
}
