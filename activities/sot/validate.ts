import type { Model } from '../../schemas/model';
import { renderStage, unattendedProblem } from './boot-chain';
import { checkHostAddresses, checkSubnets } from './check-network';
import { checkReferences, checkUniqueIds } from './check-references';
import { checkRollout } from './check-rollout';
import { lineOf, sortDiagnostics, type Diagnostic } from './diagnostics';
import { loadSot, type LoadedSot } from './load';
import { TemplateError } from './render';

export interface ValidationResult {
  /** Present only when there is no problem at all. */
  model?: Model;
  diagnostics: Diagnostic[];
}

function buildModel(sot: LoadedSot): Model {
  const model: Model = { sites: {}, os: {}, profiles: {}, groups: {}, assets: {}, sources: {} };
  const src = (ref: { file: string; doc: { contents: unknown } }, line: number) => ({ file: ref.file, line });
  for (const s of sot.sites) {
    model.sites[s.value.id] = { site: s.value, hosts: [] };
    model.sources[`site:${s.value.id}`] = src(s.ref, lineOf(s.ref, []));
  }
  for (const h of sot.hosts) {
    model.sites[h.siteDir]?.hosts.push(h.value);
    model.sources[`host:${h.siteDir}/${h.value.name}`] = src(h.ref, lineOf(h.ref, []));
  }
  for (const o of sot.os) model.os[o.value.id] = o.value;
  for (const p of sot.profiles) model.profiles[p.value.id] = p.value;
  for (const g of sot.groups) model.groups[g.value.id] = g.value;
  for (const [name, text] of [...sot.assets].sort(([a], [b]) => a.localeCompare(b)))
    model.assets[name] = text;
  return model;
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
 * Renders every boot stage of every host. A template problem is reported once at the template's own
 * line, naming the first host it failed for, rather than once per host.
 */
function checkTemplates(sot: LoadedSot, model: Model): Diagnostic[] {
  const found = new Map<string, { diagnostic: Diagnostic; hosts: number }>();
  const report = (key: string, diagnostic: Diagnostic) => {
    const entry = found.get(key);
    if (entry) entry.hosts += 1;
    else found.set(key, { diagnostic, hosts: 1 });
  };
  for (const { value: host, ref, siteDir } of sot.hosts) {
    const stages = model.groups[host.group]?.boots.length ?? 0;
    for (let stage = 0; stage < stages; stage++) {
      const what = `rendering for host ${siteDir}/${host.name}`;
      try {
        const rendered = renderStage(model, siteDir, host, stage);
        const problem =
          rendered.unattended && unattendedProblem(rendered.unattended.type, rendered.unattended.content);
        if (problem && rendered.unattended) {
          const file = `assets/${rendered.unattended.template}`;
          report(`${file}|${problem}`, { file, line: 1, path: what, message: problem, check: 'unattended' });
        }
      } catch (err) {
        if (!(err instanceof TemplateError)) continue; // an unresolved reference, reported by checkReferences
        const origin = err.template.startsWith('assets/')
          ? { file: err.template, line: err.templateLine ?? 1 }
          : { file: ref.file, line: lineOf(ref, []) };
        const loc = inlineTemplateOrigin(sot, err.template) ?? origin;
        report(`${loc.file}|${loc.line}|${err.message}`, {
          ...loc,
          path: what,
          message: err.message,
          check: 'template',
        });
      }
    }
  }
  return [...found.values()].map(({ diagnostic, hosts }) =>
    hosts > 1 ? { ...diagnostic, message: `${diagnostic.message} (and ${hosts - 1} more)` } : diagnostic,
  );
}

export function validateLoaded(sot: LoadedSot): ValidationResult {
  const diagnostics = [
    ...sot.diagnostics,
    ...checkUniqueIds(sot),
    ...checkReferences(sot),
    ...checkSubnets(sot),
    ...checkHostAddresses(sot),
    ...checkRollout(sot),
  ];
  const model = buildModel(sot);
  diagnostics.push(...checkTemplates(sot, model));
  if (diagnostics.length > 0) return { diagnostics: sortDiagnostics(diagnostics) };
  return { model, diagnostics: [] };
}

/** Loads and checks a source-of-truth directory: every problem at once, or a self-contained model. */
export async function validateSot(root: string): Promise<ValidationResult> {
  return validateLoaded(await loadSot(root));
}
