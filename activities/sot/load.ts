import { LineCounter, parseAllDocuments } from 'yaml';
import type { z } from 'zod';
import { BootProfileSchema, type BootProfile } from '../../schemas/boot-profile';
import { HostSchema, type Host } from '../../schemas/host';
import { HostGroupSchema, type HostGroup } from '../../schemas/host-group';
import { OsSchema, type Os } from '../../schemas/os';
import { SiteSchema, type Site } from '../../schemas/site';
import { at, lineOf, type Diagnostic, type DocRef, type PathSegment } from './diagnostics';
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
  /** Site directories with a host document that did not parse: counting their groups would mislead. */
  incompleteSites: Set<string>;
  /** `kind:id` of every document that declares an id, even one that failed its schema (reported there). */
  declared: Set<string>;
}

const YAML_RE = /\.ya?ml$/;
const TOP_DIRS = ['sites/', 'os/', 'boot/', 'workflows/', 'assets/'];

type Kind = 'site' | 'host' | 'os' | 'profile' | 'group';

/** What a file is: an object kind, an asset, or why it is in the wrong place. */
function classify(rel: string): { kind: Kind; siteDir?: string } | { asset: true } | { misplaced: string } {
  if (rel.startsWith('assets/')) return { asset: true };
  if (!YAML_RE.test(rel)) return { misplaced: 'not a YAML file (.yaml or .yml); only assets/ holds other files' };
  const parts = rel.split('/');
  if (parts[0] === 'sites') {
    if (parts.length === 3 && /^site\.ya?ml$/.test(parts[2] ?? ''))
      return { kind: 'site', siteDir: parts[1] };
    if (parts.length >= 4 && parts[2] === 'hosts') return { kind: 'host', siteDir: parts[1] };
    return { misplaced: 'unexpected file: sites/ holds sites/<site>/site.yaml and sites/<site>/hosts/*.yaml' };
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

/** Reads a source-of-truth directory. Every problem is collected; objects that parse are returned. */
export async function loadSot(root: string): Promise<LoadedSot> {
  const tree = await readTree(root, (rel) => TOP_DIRS.some((d) => rel.startsWith(d)));
  const out: LoadedSot = {
    sites: [],
    hosts: [],
    os: [],
    profiles: [],
    groups: [],
    assets: new Map(),
    diagnostics: [...tree.problems],
    incompleteSites: new Set(),
    declared: new Set(),
  };
  for (const file of tree.files) {
    const kind = classify(file.rel);
    if ('asset' in kind) {
      out.assets.set(file.rel.slice('assets/'.length), file.text);
      continue;
    }
    if ('misplaced' in kind) {
      out.diagnostics.push({ file: file.rel, line: 1, path: '(file)', message: kind.misplaced, check: 'layout' });
      continue;
    }
    const before = out.diagnostics.length;
    const docs = parseDocs(file, out.diagnostics);
    if (kind.kind === 'host' && out.diagnostics.length > before) out.incompleteSites.add(kind.siteDir ?? '');
    for (const { ref, data } of docs) {
      const d = out.diagnostics;
      const id = (data as { id?: unknown } | null)?.id;
      if (typeof id === 'string') out.declared.add(`${kind.kind}:${id}`);
      switch (kind.kind) {
        case 'site': {
          const value = parseWith(SiteSchema, ref, data, d);
          if (value) out.sites.push({ value, ref, siteDir: kind.siteDir ?? '' });
          break;
        }
        case 'host': {
          const value = parseWith(HostSchema, ref, data, d);
          if (value) out.hosts.push({ value, ref, siteDir: kind.siteDir ?? '' });
          else out.incompleteSites.add(kind.siteDir ?? '');
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
  }
  return out;
}
