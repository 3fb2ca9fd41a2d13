import { at, type Diagnostic, type DocRef, type PathSegment } from './diagnostics';
import { firstByKey, type Kind, type Located, type LoadedSot } from './load';

function uniqueBy<T>(
  items: readonly Located<T>[],
  key: (v: T) => string,
  path: PathSegment[],
  what: string,
  out: Diagnostic[],
  scope = '',
): void {
  const seen = new Map<string, DocRef>();
  for (const { value, ref } of items) {
    const k = key(value);
    const first = seen.get(k);
    if (!first) {
      seen.set(k, ref);
      continue;
    }
    const where = scope ? `${scope} (${first.file})` : first.file;
    out.push(at(ref, path, 'duplicate-id', `${what} "${k}" is already defined in ${where}`));
  }
}

function uniqueInList<T>(
  ref: DocRef,
  list: readonly T[],
  key: (v: T) => string,
  field: string,
  what: string,
  out: Diagnostic[],
) {
  const seen = new Set<string>();
  list.forEach((item, i) => {
    const k = key(item);
    if (seen.has(k))
      out.push(
        at(
          ref,
          [field, i, 'name' in (item as object) ? 'name' : 'id'],
          'duplicate-id',
          `${what} "${k}" is defined twice`,
        ),
      );
    seen.add(k);
  });
}

export function checkUniqueIds(sot: LoadedSot): Diagnostic[] {
  const out: Diagnostic[] = [];
  uniqueBy(sot.sites, (s) => s.id, ['id'], 'site', out);
  uniqueBy(sot.os, (o) => o.id, ['id'], 'os', out);
  uniqueBy(sot.profiles, (p) => p.id, ['id'], 'boot profile', out);
  uniqueBy(sot.groups, (g) => g.id, ['id'], 'host group', out);
  const bySite = new Map<string, Located<{ name: string }>[]>();
  for (const h of sot.hosts) {
    const list = bySite.get(h.siteDir);
    if (list) list.push(h);
    else bySite.set(h.siteDir, [h]);
  }
  for (const [siteDir, hosts] of bySite)
    uniqueBy(hosts, (h) => h.name, ['name'], 'host', out, `site ${siteDir}`);
  for (const { value: site, ref, siteDir } of sot.sites) {
    if (site.id !== siteDir) {
      out.push(
        at(ref, ['id'], 'site-dir', `site id "${site.id}" must match its directory sites/${siteDir}/`),
      );
    }
    uniqueInList(ref, site.subnets, (s) => s.id, 'subnets', 'subnet', out);
    uniqueInList(ref, site.agents, (a) => a.name, 'agents', 'agent', out);
  }
  return out;
}

/** Ids defined in the SoT, of every kind a reference can name. */
interface KnownIds {
  groups: { has(id: string): boolean };
  profiles: { has(id: string): boolean };
  os: { has(id: string): boolean };
}

function knownIds(sot: LoadedSot): KnownIds {
  // An object whose own document failed its schema was reported there; it still counts as defined here,
  // and so does any id of a kind with a file that could not be read or parsed.
  const known = (kind: Kind, ids: string[]) => ({
    has: (id: string) =>
      ids.includes(id) || sot.declared.has(`${kind}:${id}`) || sot.incompleteKinds.has(kind),
  });
  return {
    groups: known(
      'group',
      sot.groups.map((g) => g.value.id),
    ),
    profiles: known(
      'profile',
      sot.profiles.map((p) => p.value.id),
    ),
    os: known(
      'os',
      sot.os.map((o) => o.value.id),
    ),
  };
}

/** Each host's site, host group and subnets. */
function checkHosts(sot: LoadedSot, known: KnownIds, out: Diagnostic[]): void {
  const sites = firstByKey(sot.sites, (s) => s.siteDir);
  for (const { value: host, ref, siteDir } of sot.hosts) {
    const site = sites.get(siteDir)?.value;
    if (!site && (sot.declared.has(`site:${siteDir}`) || sot.brokenSiteFiles.has(siteDir))) continue;
    if (!site) {
      out.push(
        at(ref, [], 'reference', `host ${host.name} is in sites/${siteDir}/, which has no valid site.yaml`),
      );
      continue;
    }
    if (!known.groups.has(host.group))
      out.push(
        at(
          ref,
          ['group'],
          'reference',
          `unknown host group "${host.group}" (no workflows/*.yaml has this id)`,
        ),
      );
    host.interfaces.forEach((iface, i) => {
      if (!site.subnets.some((s) => s.id === iface.subnet)) {
        out.push(
          at(
            ref,
            ['interfaces', i, 'subnet'],
            'reference',
            `unknown subnet "${iface.subnet}" in site ${site.id}`,
          ),
        );
      }
    });
  }
}

/** Each boot profile's OS and unattended template; each host group's boot profiles and dependencies. */
function checkProfilesAndGroups(sot: LoadedSot, known: KnownIds, out: Diagnostic[]): void {
  for (const { value: profile, ref } of sot.profiles) {
    if (!known.os.has(profile.os))
      out.push(at(ref, ['os'], 'reference', `unknown os "${profile.os}" (no os/*.yaml has this id)`));
    if (profile.unattended && !sot.assets.has(profile.unattended.template)) {
      out.push(
        at(
          ref,
          ['unattended', 'template'],
          'reference',
          `template not found: assets/${profile.unattended.template}`,
        ),
      );
    }
  }
  for (const { value: group, ref } of sot.groups) {
    group.boots.forEach((boot, i) => {
      if (!known.profiles.has(boot))
        out.push(
          at(ref, ['boots', i], 'reference', `unknown boot profile "${boot}" (no boot/*.yaml has this id)`),
        );
    });
    group.rollout.depends_on.forEach((dep, i) => {
      if (!known.groups.has(dep))
        out.push(at(ref, ['rollout', 'depends_on', i], 'reference', `unknown host group "${dep}"`));
    });
  }
}

export function checkReferences(sot: LoadedSot): Diagnostic[] {
  const out: Diagnostic[] = [];
  const known = knownIds(sot);
  checkHosts(sot, known, out);
  checkProfilesAndGroups(sot, known, out);
  return out;
}
