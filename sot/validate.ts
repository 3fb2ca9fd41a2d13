import type { Host } from '../schemas/host';
import type { Model } from '../schemas/model';
import { renderStage, unattendedProblem } from './boot-chain';
import { rememberStates, stageState, type StageState } from './boot-state';
import { checkHostAddresses, checkSubnets } from './check-network';
import { checkReferences, checkUniqueIds } from './check-references';
import { checkGates } from './check-gates';
import { checkRollout } from './check-rollout';
import { lineOf, sortDiagnostics, type Diagnostic } from './diagnostics';
import type { HostsFileCache } from './fast-hosts';
import { loadSot, type LoadedSot, type LocatedHost } from './load';
import { TemplateError } from './render';

export interface ValidationResult {
  /** Present only when there is no problem at all. */
  model?: Model;
  diagnostics: Diagnostic[];
}

/** A record's own entry: an id or directory named `constructor` or `toString` is no built-in. */
function own<T>(record: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

/** Sets a key only once: with a duplicate id (reported by checkUniqueIds) the first definition is the model's. */
function setFirst<T>(record: Record<string, T>, key: string, value: T): boolean {
  if (Object.hasOwn(record, key)) return false;
  record[key] = value;
  return true;
}

function buildModel(sot: LoadedSot): Model {
  const model: Model = { sites: {}, os: {}, profiles: {}, groups: {}, assets: {}, sources: {} };
  const src = (ref: { file: string; doc: { contents: unknown } }, line: number) => ({ file: ref.file, line });
  for (const s of sot.sites) {
    if (setFirst(model.sites, s.value.id, { site: s.value, hosts: [] }))
      model.sources[`site:${s.value.id}`] = src(s.ref, lineOf(s.ref, []));
  }
  for (const h of sot.hosts) {
    own(model.sites, h.siteDir)?.hosts.push(h.value);
    setFirst(model.sources, `host:${h.siteDir}/${h.value.name}`, src(h.ref, lineOf(h.ref, [])));
  }
  for (const o of sot.os) setFirst(model.os, o.value.id, o.value);
  for (const p of sot.profiles) setFirst(model.profiles, p.value.id, p.value);
  for (const g of sot.groups) setFirst(model.groups, g.value.id, g.value);
  for (const [name, text] of [...sot.assets].sort(([a], [b]) => a.localeCompare(b)))
    model.assets[name] = text;
  return model;
}

/**
 * The model to render: a profile whose unattended template is missing (reported by checkReferences) is
 * rendered without it, so that its other templates are still checked and the missing one is not
 * reported again as a template error.
 */
function renderableModel(model: Model): Model {
  const profiles = Object.fromEntries(
    Object.entries(model.profiles).map(([id, profile]) => {
      const template = profile.unattended?.template;
      const missing = template !== undefined && !Object.hasOwn(model.assets, template);
      return [id, missing ? { ...profile, unattended: undefined } : profile];
    }),
  );
  return { ...model, profiles };
}

/** Where an inline template (an OS cmdline, a job field) was written, from the name the renderer gave it. */
function inlineTemplateOrigin(sot: LoadedSot, template: string): { file: string; line: number } | undefined {
  const os = /^os\/([^:]+): cmdline$/.exec(template);
  const found = os && sot.os.find((o) => o.value.id === os[1]);
  if (found) return { file: found.ref.file, line: lineOf(found.ref, ['cmdline']) };
  const job = /^boot\/([^:]+): (pre_shutdown|validation)\[(\d+)\]: ([\w]+)(?:\[(\d+)\]|\.(.+))?$/.exec(
    template,
  );
  const profile = job && sot.profiles.find((p) => p.value.id === job[1]);
  if (!job || !profile) return undefined;
  const path = [
    job[2] ?? '',
    Number(job[3]),
    job[4] ?? '',
    ...(job[5] ? [Number(job[5])] : job[6] ? [job[6]] : []),
  ];
  return { file: profile.ref.file, line: lineOf(profile.ref, path) };
}

/**
 * The problem with one boot stage of one host, keyed so that the same problem for other hosts merges;
 * or, without one, what a plan compares of the stage.
 */
function stageProblem(
  sot: LoadedSot,
  model: Model,
  { value: host, ref, siteDir }: LocatedHost,
  stage: number,
): { key: string; diagnostic: Diagnostic } | { state: StageState } | undefined {
  const what = `rendering for host ${siteDir}/${host.name}`;
  try {
    const rendered = renderStage(model, siteDir, host, stage);
    const { unattended } = rendered;
    const problem = unattended && unattendedProblem(unattended.type, unattended.content);
    if (!problem || !unattended) return { state: stageState(rendered) };
    const file = `assets/${unattended.template}`;
    const diagnostic = { file, line: 1, path: what, message: problem, check: 'unattended' };
    return { key: `${file}|${problem}`, diagnostic };
  } catch (err) {
    if (!(err instanceof TemplateError)) return undefined; // an unresolved reference, reported by checkReferences
    const origin = err.template.startsWith('assets/')
      ? { file: err.template, line: err.templateLine ?? 1 }
      : { file: ref.file, line: lineOf(ref, []) };
    const loc = inlineTemplateOrigin(sot, err.template) ?? origin;
    const diagnostic = { ...loc, path: what, message: err.message, check: 'template' };
    return { key: `${loc.file}|${loc.line}|${err.message}`, diagnostic };
  }
}

/**
 * Renders every boot stage of every host. A template problem is reported once at the template's own
 * line, naming the first host it failed for and how many more, rather than once per host.
 */
function checkTemplates(sot: LoadedSot, model: Model, states: Map<Host, StageState[]>): Diagnostic[] {
  const found = new Map<string, { diagnostic: Diagnostic; hosts: Set<string> }>();
  for (const located of sot.hosts) {
    const hostId = `${located.siteDir}/${located.value.name}`;
    const stages = own(model.groups, located.value.group)?.boots.length ?? 0;
    const rendered: StageState[] = [];
    for (let stage = 0; stage < stages; stage++) {
      const problem = stageProblem(sot, model, located, stage);
      if (!problem) continue;
      if ('state' in problem) {
        rendered.push(problem.state);
        continue;
      }
      const entry = found.get(problem.key);
      if (entry) entry.hosts.add(hostId);
      else found.set(problem.key, { diagnostic: problem.diagnostic, hosts: new Set([hostId]) });
    }
    if (rendered.length === stages) states.set(located.value, rendered);
  }
  return [...found.values()].map(({ diagnostic, hosts }) => {
    const more = hosts.size - 1;
    if (more === 0) return diagnostic;
    const message = `${diagnostic.message} (and ${more} more host${more === 1 ? '' : 's'})`;
    return { ...diagnostic, message };
  });
}

export function validateLoaded(sot: LoadedSot): ValidationResult {
  // Past a limit, what was read is not the source of truth: checking it would only cascade.
  if (sot.truncated) return { diagnostics: sortDiagnostics(sot.diagnostics) };
  const diagnostics = [
    ...sot.diagnostics,
    ...checkUniqueIds(sot),
    ...checkReferences(sot),
    ...checkSubnets(sot),
    ...checkHostAddresses(sot),
    ...checkRollout(sot),
  ];
  const model = buildModel(sot);
  const states = new Map<Host, StageState[]>();
  const renderable = renderableModel(model);
  diagnostics.push(...checkTemplates(sot, renderable, states), ...checkGates(sot, renderable));
  if (diagnostics.length > 0) return { diagnostics: sortDiagnostics(diagnostics) };
  rememberStates(model, states);
  return { model, diagnostics: [] };
}

/** Loads and checks a source-of-truth directory: every problem at once, or a self-contained model. */
export async function validateSot(root: string, cache?: HostsFileCache): Promise<ValidationResult> {
  return validateLoaded(await loadSot(root, cache));
}
