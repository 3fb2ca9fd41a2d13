import { LineCounter, parseAllDocuments } from 'yaml';
import type { z } from 'zod';
import { BootProfileSchema, type BootProfile } from '../schemas/boot-profile';
import { HostSchema, type Host } from '../schemas/host';
import { HostGroupSchema, type HostGroup } from '../schemas/host-group';
import { OsSchema, type Os } from '../schemas/os';
import { SiteSchema, type Site } from '../schemas/site';
import { at, lineOf, type Diagnostic, type DocRef, type PathSegment } from './diagnostics';
import { hostsLimitProblem, readHostsFast, type HostsFileCache } from './fast-hosts';
import { lazyRefs } from './fast-yaml';
import { readTree, type TextFile } from './read-tree';

export interface Located<T> {
  value: T;
  ref: DocRef;
}

export interface LocatedHost extends Located<Host> {
  /** The site directory the host file lives in. */
  siteDir: string;
}

export interface LoadedSot {
  sites: (Located<Site> & { siteDir: string })[];
  hosts: LocatedHost[];
  os: Located<Os>[];
  profiles: Located<BootProfile>[];
  groups: Located<HostGroup>[];
  /** Files under `assets/`, by path relative to `assets/`. */
  assets: Map<string, string>;
  diagnostics: Diagnostic[];
  /** Site directories with a hosts file or document that did not parse: counting their groups would mislead. */
  incompleteSites: Set<string>;
  /** Site directories whose site file could not be read or parsed (reported there). */
  brokenSiteFiles: Set<string>;
  /** Kinds with a file that could not be read or parsed: any id of that kind may be defined there. */
  incompleteKinds: Set<Kind>;
  /** `kind:id` of every document that declares an id, even one that failed its schema (reported there). */
  declared: Set<string>;
  /** Reading stopped at a limit (files, bytes, hosts), reported there: objects of any kind may be missing. */
  truncated: boolean;
}

/**
 * Objects by key, the first definition winning: a duplicate is reported where it is defined, and every
 * later check must see the same definition that report names, or it cascades into bogus problems.
 */
export function firstByKey<T, K>(items: readonly T[], key: (item: T) => K): Map<K, T> {
  const map = new Map<K, T>();
  for (const item of items) if (!map.has(key(item))) map.set(key(item), item);
  return map;
}

const YAML_RE = /\.ya?ml$/;

export type Kind = 'site' | 'host' | 'os' | 'profile' | 'group';

/** What a file is: an object kind, an asset, or why it is in the wrong place. */
function classify(rel: string): { kind: Kind; siteDir?: string } | { asset: true } | { misplaced: string } {
  if (rel.startsWith('assets/')) return { asset: true };
  if (!YAML_RE.test(rel))
    return { misplaced: 'not a YAML file (.yaml or .yml); only assets/ holds other files' };
  const parts = rel.split('/');
  if (parts[0] === 'sites') {
    if (parts.length === 3 && /^site\.ya?ml$/.test(parts[2] ?? ''))
      return { kind: 'site', siteDir: parts[1] };
    if (parts.length >= 4 && parts[2] === 'hosts') return { kind: 'host', siteDir: parts[1] };
    return {
      misplaced: 'unexpected file: sites/ holds sites/<site>/site.yaml and sites/<site>/hosts/*.yaml',
    };
  }
  if (parts.length === 2) {
    if (parts[0] === 'os') return { kind: 'os' };
    if (parts[0] === 'boot') return { kind: 'profile' };
    if (parts[0] === 'workflows') return { kind: 'group' };
  }
  return { misplaced: `unexpected file: ${parts[0]}/ holds YAML files directly, not in subdirectories` };
}

function parseDocs(file: TextFile, diagnostics: Diagnostic[]): { ref: DocRef; data: unknown }[] {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(file.text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  if (!Array.isArray(docs)) return [];
  const out: { ref: DocRef; data: unknown }[] = [];
  for (const doc of docs) {
    const ref: DocRef = { file: file.rel, doc, lineCounter };
    if (doc.errors.length > 0) {
      for (const err of doc.errors) {
        const line = lineCounter.linePos(err.pos[0]).line;
        const message = err.message.split('\n')[0] ?? err.message;
        diagnostics.push({
          file: file.rel,
          line,
          path: '(document)',
          message: `YAML: ${message}`,
          check: 'yaml',
        });
      }
      continue;
    }
    let data: unknown;
    try {
      data = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      diagnostics.push(at(ref, [], 'yaml', `YAML: ${(err as Error).message}`));
      continue;
    }
    if (data === null || data === undefined) continue;
    out.push({ ref, data });
  }
  return out;
}

/** Turns zod issues into diagnostics at the line of the offending field. */
export function schemaDiagnostics(ref: DocRef, error: z.ZodError): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const issue of error.issues) {
    const path = issue.path.filter((p): p is PathSegment => typeof p !== 'symbol');
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) out.push(at(ref, [...path, key], 'schema', `unknown field "${key}"`));
      continue;
    }
    let message = issue.message;
    if (issue.code === 'invalid_type' && message.includes('received undefined'))
      message = 'required field is missing';
    out.push({ ...at(ref, path, 'schema', message), line: lineOf(ref, path) });
  }
  return out;
}

function parseWith<T>(
  schema: z.ZodType<T>,
  ref: DocRef,
  data: unknown,
  diagnostics: Diagnostic[],
): T | undefined {
  const result = schema.safeParse(data);
  if (result.success) return result.data;
  diagnostics.push(...schemaDiagnostics(ref, result.error));
  return undefined;
}

const KIND_OF_DIR = new Map<string, Kind>([
  ['os', 'os'],
  ['boot', 'profile'],
  ['workflows', 'group'],
]);

/** What an entry that could not be read (a file, or a directory with all it holds) may have defined. */
function unreadableKinds(rel: string): { kind: Kind; siteDir?: string }[] {
  const [top = '', siteDir, sub] = rel.split('/');
  if (top === 'sites' && siteDir) {
    const site = { kind: 'site', siteDir } as const;
    const hosts = { kind: 'host', siteDir } as const;
    if (sub === undefined) return [site, hosts];
    if (sub === 'hosts') return [hosts];
    return /^site\.ya?ml$/.test(sub) ? [site] : [];
  }
  const kind = KIND_OF_DIR.get(top);
  return kind ? [{ kind }] : [];
}

/** Records that a file of this kind is unusable, so that checks needing all of its kind hold back. */
function markIncomplete(out: LoadedSot, { kind, siteDir = '' }: { kind: Kind; siteDir?: string }): void {
  out.incompleteKinds.add(kind);
  if (kind === 'host') out.incompleteSites.add(siteDir);
  if (kind === 'site') out.brokenSiteFiles.add(siteDir);
}

function addDocument(
  out: LoadedSot,
  kind: Kind,
  siteDir: string,
  ref: DocRef,
  data: unknown,
  keep: (ref: DocRef) => DocRef,
): void {
  const d = out.diagnostics;
  const id = (data as { id?: unknown } | null)?.id;
  if (typeof id === 'string') out.declared.add(`${kind}:${id}`);
  switch (kind) {
    case 'site': {
      const value = parseWith(SiteSchema, ref, data, d);
      if (value) out.sites.push({ value, ref, siteDir });
      break;
    }
    case 'host': {
      const value = parseWith(HostSchema, ref, data, d);
      if (value) out.hosts.push({ value, ref: keep(ref), siteDir });
      else out.incompleteSites.add(siteDir);
      break;
    }
    case 'os': {
      const value = parseWith(OsSchema, ref, data, d);
      if (value) out.os.push({ value, ref });
      break;
    }
    case 'profile': {
      const value = parseWith(BootProfileSchema, ref, data, d);
      if (value) out.profiles.push({ value, ref });
      break;
    }
    case 'group': {
      const value = parseWith(HostGroupSchema, ref, data, d);
      if (value) out.groups.push({ value, ref });
      break;
    }
  }
}

/** Whether the hosts read so far pass the limit: then the file that passed it says so, once. */
function tooManyHostsAt(out: LoadedSot, rel: string): boolean {
  const problem = hostsLimitProblem(out.hosts.length, rel);
  if (problem) out.diagnostics.push(problem);
  return problem !== undefined;
}

/** A hosts file: through js-yaml when it reads cleanly, else through `yaml` (false) to say what is wrong. */
function addFastHosts(out: LoadedSot, file: TextFile, siteDir: string, cache?: HostsFileCache): boolean {
  const hosts = readHostsFast(file, cache);
  if (!hosts) return false;
  for (const { value, ref } of hosts) out.hosts.push({ value, ref, siteDir });
  return true;
}

const TOP_NAMES = ['sites', 'os', 'boot', 'workflows', 'assets'];
const TOP_DIRS = TOP_NAMES.map((name) => `${name}/`);
/** Top-level directories named after what they would hold, and where that goes. */
const TOP_ALIASES = new Map([
  ['host', 'sites/<site>/hosts'],
  ['hosts', 'sites/<site>/hosts'],
]);

/** Whether two different words are one letter added, dropped, changed, or two letters swapped apart. */
function oneEditApart(a: string, b: string): boolean {
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  const [x, y] = [a.slice(i), b.slice(i)];
  const swapped = x[0] === y[1] && x[1] === y[0] && x.slice(2) === y.slice(2);
  return x !== y && (x.slice(1) === y.slice(1) || x.slice(1) === y || x === y.slice(1) || swapped);
}

/**
 * The directory meant by a top-level directory the walk ignored, when its name is a near miss: another
 * case, an alias, a plural too many or too few, or one edit from a name of five letters or more with the
 * same first letter. Other directories (`docs/`, `book/`, `ops/`) are someone else's.
 */
function meantTopDir(name: string): string | undefined {
  const lower = name.toLowerCase();
  const near = (top: string) =>
    lower === top ||
    lower === `${top}s` ||
    `${lower}s` === top ||
    (top.length >= 5 && lower[0] === top[0] && oneEditApart(lower, top));
  return TOP_ALIASES.get(lower) ?? TOP_NAMES.find(near);
}

function misspelledTopDirs(ignored: readonly string[]): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const entry of ignored) {
    const name = /^([^/]+)\/$/.exec(entry)?.[1];
    const meant = name && meantTopDir(name);
    if (!name || !meant) continue;
    const message = `unknown directory ${name}/: did you mean ${meant}/?`;
    out.push({ file: name, line: 1, path: '(file)', message, check: 'layout' });
  }
  return out;
}

/** Reads a source-of-truth directory. Every problem is collected; objects that parse are returned. */
export async function loadSot(root: string, cache?: HostsFileCache): Promise<LoadedSot> {
  const tree = await readTree(root, (rel) => TOP_DIRS.some((d) => rel.startsWith(d)));
  const out: LoadedSot = {
    sites: [],
    hosts: [],
    os: [],
    profiles: [],
    groups: [],
    assets: new Map(),
    diagnostics: [...tree.problems, ...misspelledTopDirs(tree.ignored)],
    incompleteSites: new Set(),
    brokenSiteFiles: new Set(),
    incompleteKinds: new Set(),
    declared: new Set(),
    truncated: false,
  };
  for (const problem of tree.problems) unreadableKinds(problem.file).forEach((k) => markIncomplete(out, k));
  let tooManyHosts = false;
  for (const file of tree.files) {
    const kind = classify(file.rel);
    if ('asset' in kind) {
      out.assets.set(file.rel.slice('assets/'.length), file.text);
      continue;
    }
    if ('misplaced' in kind) {
      out.diagnostics.push({
        file: file.rel,
        line: 1,
        path: '(file)',
        message: kind.misplaced,
        check: 'layout',
      });
      continue;
    }
    if (kind.kind === 'host' && tooManyHosts) continue;
    if (kind.kind === 'host' && addFastHosts(out, file, kind.siteDir ?? '', cache)) {
      tooManyHosts = tooManyHostsAt(out, file.rel);
      continue;
    }
    const before = out.diagnostics.length;
    const docs = parseDocs(file, out.diagnostics);
    if (out.diagnostics.length > before) markIncomplete(out, kind);
    // A host keeps a ref that holds the file's text, not its documents (refs of hosts files).
    const refAt = lazyRefs(file.rel, file.text);
    const keep = (ref: DocRef) => (kind.kind === 'host' ? refAt(lineOf(ref, [])) : ref);
    for (const { ref, data } of docs) addDocument(out, kind.kind, kind.siteDir ?? '', ref, data, keep);
    if (kind.kind === 'host') tooManyHosts = tooManyHostsAt(out, file.rel);
  }
  out.truncated = tree.truncated || tooManyHosts;
  return out;
}
