import { z } from 'zod';
import { BootProfileSchema } from './boot-profile';
import { HostSchema } from './host';
import { HostGroupSchema } from './host-group';
import { OsSchema } from './os';
import { SiteSchema } from './site';

const FILES = {
  site: { schema: SiteSchema, title: 'Vaquero site (sites/<site>/site.yaml)' },
  host: { schema: HostSchema, title: 'Vaquero host (sites/<site>/hosts/*.yaml, one per YAML document)' },
  os: { schema: OsSchema, title: 'Vaquero operating system (os/*.yaml)' },
  'boot-profile': { schema: BootProfileSchema, title: 'Vaquero boot profile (boot/*.yaml)' },
  'host-group': { schema: HostGroupSchema, title: 'Vaquero host group and rollout rules (workflows/*.yaml)' },
};

/** JSON Schemas of the files an operator writes, as input (defaults optional), keyed by file name stem. */
export function sotJsonSchemas(): Record<string, object> {
  return Object.fromEntries(
    Object.entries(FILES).map(([name, { schema, title }]) => [
      name,
      { title, ...z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any', target: 'draft-7' }) },
    ]),
  );
}
