// Writes JSON Schema files for editors (yaml-language-server, VS Code) from the zod schemas.
// `npm run schemas` regenerates them; a test fails when they are out of date.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sotJsonSchemas } from '../schemas/json-schema';

const outDir = fileURLToPath(new URL('../schemas/json/', import.meta.url));
await mkdir(outDir, { recursive: true });
for (const [name, schema] of Object.entries(sotJsonSchemas())) {
  const file = path.join(outDir, `${name}.schema.json`);
  await writeFile(file, `${JSON.stringify(schema, null, 2)}\n`);
  console.log(`wrote ${path.relative(process.cwd(), file)}`);
}
