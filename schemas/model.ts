import { z } from 'zod';
import { BootProfileSchema } from './boot-profile';
import { HostSchema } from './host';
import { HostGroupSchema } from './host-group';
import { OsSchema } from './os';
import { SiteSchema } from './site';
import { own } from './common';

export const SourceRefSchema = z.object({ file: z.string(), line: z.int() });
export type SourceRef = z.infer<typeof SourceRefSchema>;

export const SiteModelSchema = z.object({
  site: SiteSchema,
  hosts: z.array(HostSchema),
});
export type SiteModel = z.infer<typeof SiteModelSchema>;

/**
 * A validated source of truth, self-contained (templates included) so that it can be stored as a model
 * revision, sent to agents and rendered without the files it came from.
 */
export const ModelSchema = z.object({
  sites: z.record(z.string(), SiteModelSchema),
  os: z.record(z.string(), OsSchema),
  profiles: z.record(z.string(), BootProfileSchema),
  groups: z.record(z.string(), HostGroupSchema),
  assets: z.record(z.string(), z.string()),
  /** Where each object was written, keyed `kind:id` (hosts `host:<site>/<name>`). */
  sources: z.record(z.string(), SourceRefSchema),
});
export type Model = z.infer<typeof ModelSchema>;

/**
 * The part of a model an agent of `site` may see: only its own site (and its hosts' sources); the
 * shared catalogs (os, profiles, groups, assets) whole. Undefined when the model has no such site.
 */
export function modelForSite(model: Model, site: string): Model | undefined {
  const siteModel = own(model.sites, site);
  if (!siteModel) return undefined;
  const sources = Object.fromEntries(
    Object.entries(model.sources).filter(
      ([key]) => !/^(site|host):/.test(key) || key === `site:${site}` || key.startsWith(`host:${site}/`),
    ),
  );
  return { ...model, sites: { [site]: siteModel }, sources };
}
