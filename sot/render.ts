import nunjucks from 'nunjucks';
import { own } from '../schemas/common';
import { bootInterface, type Host } from '../schemas/host';
import type { Model } from '../schemas/model';
import type { Site, Subnet } from '../schemas/site';
import { macSlug, netmask, parseCidr } from './ipv4';
import { assetBase, mirrorAgents, servingAgent } from './serving-agent';

export class TemplateError extends Error {
  constructor(
    message: string,
    /** The template the error is in (`cmdline` of an OS, or a path under assets/). */
    readonly template: string,
    /** 1-based line inside the template, when the engine knows it. */
    readonly templateLine: number | undefined,
  ) {
    super(message);
    this.name = 'TemplateError';
  }
}

/** Serves templates from the model's assets, so `{% include %}` of snippets works without the files. */
class AssetLoader implements nunjucks.ILoader {
  constructor(private readonly assets: Readonly<Record<string, string>>) {}
  // nunjucks looks a name up in `loader.cache`, a plain object it assigns, before loading it: there
  // `{% include "constructor" %}` finds Object's constructor. So the cache stays our object without a
  // prototype, whatever nunjucks assigns. It holds each template compiled once: compiling costs twenty
  // times a render, and validate renders every template for every host.
  private readonly compiled: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  get cache(): Record<string, unknown> {
    return this.compiled;
  }
  set cache(_ignored: unknown) {}
  getSource(name: string): nunjucks.LoaderSource {
    const src = own(this.assets, name);
    if (src === undefined) throw new Error(`template not found: assets/${name}`);
    return { src, path: name, noCache: false };
  }
}

const environments = new WeakMap<object, nunjucks.Environment>();
/** Inline templates (an OS cmdline, a job field) compiled once per environment, by source. */
const inlineTemplates = new WeakMap<nunjucks.Environment, Map<string, nunjucks.Template>>();

function environment(assets: Readonly<Record<string, string>>): nunjucks.Environment {
  let env = environments.get(assets);
  if (!env) {
    // Undefined variables are errors: a typo must fail validation, not boot a host with an empty value.
    env = new nunjucks.Environment(new AssetLoader(assets), { throwOnUndefined: true, autoescape: false });
    strictFilters(env);
    environments.set(assets, env);
  }
  return env;
}

const LENIENT_FILTERS = new Set(['default', 'd']);

/** nunjucks lets filters swallow undefined (`{{ typo | upper }}` renders ""); like Jinja's StrictUndefined, refuse it. */
function strictFilters(env: nunjucks.Environment): void {
  const filters = (env as unknown as { filters: Record<string, (...args: unknown[]) => unknown> }).filters;
  for (const [name, filter] of Object.entries(filters)) {
    if (LENIENT_FILTERS.has(name)) continue;
    env.addFilter(name, (value: unknown, ...args: unknown[]) => {
      if (value === undefined) throw new Error(`filter "${name}" applied to an undefined value`);
      return filter(value, ...args);
    });
  }
}

/** The `{{ ... }}` expression at a line and column of a template, to name what was undefined. */
function expressionAt(source: string | undefined, line: number, column: number): string | undefined {
  const text = source?.split('\n')[line - 1];
  if (!text) return undefined;
  const start = text.lastIndexOf('{{', Math.max(column - 1, 0) + 1);
  const end = text.indexOf('}}', start);
  return start >= 0 && end > start ? text.slice(start, end + 2) : undefined;
}

/** The part of a nunjucks syntax tree used here (nunjucks exports its parser, without types). */
interface TemplateNode {
  typename: string;
  /** 0-based. */
  lineno: number;
  value?: unknown;
  target?: TemplateNode;
  val?: TemplateNode;
  name?: TemplateNode;
  template?: TemplateNode;
  args?: { children: TemplateNode[] };
  findAll(type: unknown): TemplateNode[];
}

const { parser, nodes } = nunjucks as unknown as {
  parser: { parse(src: string): TemplateNode };
  nodes: { Filter: unknown; Include: unknown };
};

/** Nodes of one type in a template, none when it does not parse (that error is the one reported). */
function findNodes(src: string | undefined, type: unknown): TemplateNode[] {
  if (src === undefined) return [];
  try {
    return parser.parse(src).findAll(type);
  } catch {
    return [];
  }
}

const UNKNOWN = Symbol('unknown');

/** The value of a variable path (`host.metadata.rack`) in the context; UNKNOWN for any other expression. */
function lookup(node: TemplateNode | undefined, context: object): unknown {
  if (node?.typename === 'Symbol') return (context as Record<string, unknown>)[String(node.value)];
  if (node?.typename !== 'LookupVal' || node.val?.typename !== 'Literal') return UNKNOWN;
  const target = lookup(node.target, context);
  if (target === UNKNOWN || target === null || target === undefined) return target;
  return (target as Record<string, unknown>)[String(node.val.value)];
}

/** A template's source by name ('' for an inline template rendered from a string). */
type SourceOf = (name: string) => string | undefined;

/** A template by name and a 1-based line in it. */
interface Position {
  name: string;
  line: number;
}

/**
 * nunjucks gives no line for an error thrown by a filter, and names the last included template even when
 * the filter is in the includer: the place is the filter's use whose input is undefined in the context,
 * else the first use whose input is not a plain variable path.
 */
function locateFilter(
  filter: string,
  names: string[],
  source: SourceOf,
  context: object,
): Position | undefined {
  let fallback: Position | undefined;
  for (const name of names) {
    for (const node of findNodes(source(name), nodes.Filter)) {
      if (node.name?.value !== filter) continue;
      const value = lookup(node.args?.children[0], context);
      if (value === undefined) return { name, line: node.lineno + 1 };
      if (value === UNKNOWN) fallback ??= { name, line: node.lineno + 1 };
    }
  }
  return fallback;
}

/** nunjucks gives no line for a missing include: the place is the `{% include %}` that names it. */
function locateInclude(missing: string, names: string[], source: SourceOf): Position | undefined {
  for (const name of names) {
    const include = findNodes(source(name), nodes.Include).find(
      (node) => node.template?.typename === 'Literal' && node.template.value === missing,
    );
    if (include) return { name, line: include.lineno + 1 };
  }
  return undefined;
}

/** Where an error nunjucks gives no line for comes from, when the message says what to look for. */
function locateLineless(message: string, names: string[], source: SourceOf, context: object) {
  const filter = /^filter "([^"]+)" applied to an undefined value$/.exec(message)?.[1];
  if (filter) return locateFilter(filter, names, source, context);
  const missing = /^template not found: assets\/(.+)$/.exec(message)?.[1];
  return missing ? locateInclude(missing, names, source) : undefined;
}

function toTemplateError(err: unknown, template: string, source: SourceOf, context: object): TemplateError {
  const raw = err instanceof Error ? err.message : String(err);
  const frames = [...raw.matchAll(/\(([^)]*)\)(?: \[Line (\d+), Column (\d+)\])?/g)];
  const position = frames.filter((f) => f[2]).pop();
  const line = position?.[2] ? Number.parseInt(position[2], 10) : undefined;
  const column = Number.parseInt(position?.[3] ?? '1', 10);
  const lines = raw
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('(') && !l.startsWith('Template render error'));
  let message = (lines[lines.length - 1] ?? raw).replace(/^Error: /, '');
  // nunjucks names the last included template even for an error in the includer after the include, so
  // the frames are tried innermost first and the one whose source has an expression there wins.
  const names = [...new Set(frames.map((f) => (f[1] === 'unknown path' ? '' : (f[1] ?? ''))).reverse())];
  const assetPath = (name: string) => (name ? `assets/${name}` : template);
  if (line === undefined) {
    const found = locateLineless(message, names, source, context);
    if (found) return new TemplateError(message, assetPath(found.name), found.line);
  }
  let name = names[0] ?? '';
  if (line !== undefined && message.startsWith('attempted to output null or undefined value')) {
    for (const candidate of names) {
      const expr = expressionAt(source(candidate), line, column);
      if (expr) {
        message = `undefined value in ${expr}`;
        name = candidate;
        break;
      }
    }
  }
  return new TemplateError(message, assetPath(name), line);
}

export function renderTemplate(model: Pick<Model, 'assets'>, name: string, context: object): string {
  try {
    return environment(model.assets).render(name, context);
  } catch (err) {
    throw toTemplateError(err, `assets/${name}`, (n) => own(model.assets, n), context);
  }
}

export function renderString(
  model: Pick<Model, 'assets'>,
  source: string,
  context: object,
  what: string,
): string {
  const env = environment(model.assets);
  let compiled = inlineTemplates.get(env);
  if (!compiled) inlineTemplates.set(env, (compiled = new Map<string, nunjucks.Template>()));
  let template = compiled.get(source);
  if (!template) compiled.set(source, (template = new nunjucks.Template(source, env)));
  try {
    return template.render(context);
  } catch (err) {
    throw toTemplateError(err, what, (n) => (n ? own(model.assets, n) : source), context);
  }
}

export interface BootUrls {
  assets: string;
  ipxe: string;
  unattended: string;
  checkpoint: string;
  kernel: string;
  initrds: string[];
  /**
   * The asset URLs of the subnet's other agents, in site order: where the host's script falls back
   * to for its kernel and initrds, and its OS for the checkpoint, when the first agent dies.
   */
  mirrors: string[];
  /** The checkpoint URL at each agent of the subnet, the first one first. */
  checkpoints: string[];
}

/**
 * What stands for the boot token where no host is armed (validate, plan, preview): the real one is
 * made when the agent arms the host and exists only there.
 */
export const BOOT_TOKEN_PLACEHOLDER = 'BOOT-TOKEN';

/** A file the agent serves carries the token, so a fetch by anyone else is no kernel event. */
function assetFileUrl(base: string, ref: string, token: string): string {
  if (/^https?:\/\//.test(ref)) return ref;
  const url = `${base}/files/${ref.replace(/^\/+/, '')}`;
  return `${url}${url.includes('?') ? '&' : '?'}token=${token}`;
}

export interface HostContext {
  host: Host & { mac: string; ipv4: string; hostname: string };
  site: { id: string; name: string; timezone: string; metadata: Record<string, unknown> };
  subnet: Subnet & { netmask: string; prefix: number };
  group: { id: string };
  profile: { id: string };
  os: { id: string; kernel: string; initrds: string[] };
  boot: { stage: number; stages: number };
  urls: BootUrls;
}

/** A site's subnets by id, with their netmask and prefix: looked up for every host and every stage. */
const subnetsOf = new WeakMap<Site, Map<string, HostContext['subnet']>>();

function subnetById(site: Site, id: string): HostContext['subnet'] | undefined {
  let byId = subnetsOf.get(site);
  if (!byId) {
    byId = new Map();
    for (const subnet of site.subnets) {
      if (byId.has(subnet.id)) continue;
      byId.set(subnet.id, {
        ...subnet,
        netmask: netmask(subnet.cidr),
        prefix: parseCidr(subnet.cidr).prefix,
      });
    }
    subnetsOf.set(site, byId);
  }
  return byId.get(id);
}

/** The variables a template sees for one host at one boot stage (0-based), armed with `token`. */
export function hostContext(
  model: Model,
  siteId: string,
  host: Host,
  stage: number,
  token = BOOT_TOKEN_PLACEHOLDER,
  /** The agent rendering it: its own URLs when it serves the host's subnet (sot/serving-agent.ts). */
  agent?: string,
): HostContext {
  const siteModel = own(model.sites, siteId);
  if (!siteModel) throw new Error(`unknown site ${siteId}`);
  const site = siteModel.site;
  const group = own(model.groups, host.group);
  if (!group) throw new Error(`unknown host group ${host.group}`);
  const profileId = group.boots[stage];
  const profile = profileId ? own(model.profiles, profileId) : undefined;
  if (!profile) throw new Error(`host group ${group.id} has no boot stage ${stage + 1}`);
  const os = own(model.os, profile.os);
  if (!os) throw new Error(`unknown os ${profile.os}`);
  const iface = bootInterface(host);
  const subnet = subnetById(site, iface.subnet);
  if (!subnet) throw new Error(`unknown subnet ${iface.subnet}`);
  const serving = servingAgent(site, iface.subnet, agent);
  const base = assetBase(serving);
  const mirrors = mirrorAgents(site, iface.subnet, serving).map(assetBase);
  const slug = macSlug(iface.mac);
  const checkpointPath = `/checkpoint/${slug}/${stage + 1}/${token}`;
  const urls: BootUrls = {
    assets: base,
    ipxe: `${base}/ipxe/${slug}`,
    unattended: `${base}/unattended/${slug}/${stage + 1}/${token}`,
    checkpoint: `${base}${checkpointPath}`,
    kernel: assetFileUrl(base, os.kernel, token),
    initrds: os.initrds.map((i) => assetFileUrl(base, i, token)),
    mirrors,
    checkpoints: [base, ...mirrors].map((b) => `${b}${checkpointPath}`),
  };
  return {
    host: { ...host, mac: iface.mac, ipv4: iface.ipv4, hostname: iface.hostname ?? host.name },
    site: { id: site.id, name: site.name, timezone: site.timezone, metadata: site.metadata },
    subnet: { ...subnet },
    group: { id: group.id },
    profile: { id: profile.id },
    os: { id: os.id, kernel: os.kernel, initrds: os.initrds },
    boot: { stage: stage + 1, stages: group.boots.length },
    urls,
  };
}
