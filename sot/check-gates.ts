// Metric gates in the SoT: the PromQL checked as far as we can without Prometheus (balanced brackets,
// closed strings, template expressions closed) and rendered for every host it would judge.
import type { Gate } from '../schemas/gates';
import type { Host } from '../schemas/host';
import type { Model } from '../schemas/model';
import { own } from '../schemas/common';
import { at, type Diagnostic, type DocRef, type PathSegment } from './diagnostics';
import type { LoadedSot } from './load';
import { hostContext, renderString, TemplateError } from './render';

const CLOSER: Record<string, string> = { '(': ')', '[': ']', '{': '}' };

/** Template expressions and tags replaced by a placeholder, or the problem with them. */
function withoutTemplates(query: string): { text: string } | { problem: string } {
  let text = '';
  let i = 0;
  while (i < query.length) {
    const open = query.startsWith('{{', i) ? '}}' : query.startsWith('{%', i) ? '%}' : undefined;
    if (!open) {
      text += query[i];
      i += 1;
      continue;
    }
    const end = query.indexOf(open, i + 2);
    if (end < 0) return { problem: `template expression at column ${i + 1} is not closed with "${open}"` };
    text += open === '}}' ? 'x' : '';
    i = end + 2;
  }
  return { text };
}

/**
 * What is wrong with a gate's PromQL that we can tell without a Prometheus, or undefined: a string not
 * closed, a bracket not closed or closed by the wrong one, an empty query.
 */
export function promqlProblem(query: string): string | undefined {
  const stripped = withoutTemplates(query);
  if ('problem' in stripped) return stripped.problem;
  const { text } = stripped;
  if (text.trim() === '') return 'the query is empty';
  const stack: { char: string; col: number }[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '#') break; // a PromQL comment runs to the end of the line; gates are one line
    if (c === '"' || c === "'" || c === '`') {
      let j = i + 1;
      while (j < text.length && text[j] !== c) j += c !== '`' && text[j] === '\\' ? 2 : 1;
      if (j >= text.length) return `string opened with ${c} at column ${i + 1} is not closed`;
      i = j;
    } else if (own(CLOSER, c)) stack.push({ char: c, col: i + 1 });
    else if (c === ')' || c === ']' || c === '}') {
      const top = stack.pop();
      if (!top) return `"${c}" at column ${i + 1} closes nothing`;
      if (CLOSER[top.char] !== c)
        return `"${c}" at column ${i + 1} does not close the "${top.char}" opened at column ${top.col}`;
    }
  }
  const open = stack.pop();
  return open ? `"${open.char}" opened at column ${open.col} is not closed` : undefined;
}

/** The gate's query rendered for one host, or the template problem. */
function renderProblem(model: Model, site: string, host: Host, gate: Gate): string | undefined {
  try {
    const stages = own(model.groups, host.group)?.boots.length ?? 1;
    renderString(model, gate.query, hostContext(model, site, host, stages - 1), 'gate query');
    return undefined;
  } catch (err) {
    // An unresolved reference is reported by checkReferences; only the template's own problem here.
    return err instanceof TemplateError ? err.message : undefined;
  }
}

function checkGateList(
  model: Model,
  ref: DocRef,
  path: PathSegment[],
  gates: readonly Gate[],
  hosts: [string, Host][],
  out: Diagnostic[],
): void {
  gates.forEach((gate, i) => {
    const problem = promqlProblem(gate.query);
    if (problem) return void out.push(at(ref, [...path, i, 'query'], 'gate', `PromQL: ${problem}`));
    const failing = hosts.filter(([site, host]) => renderProblem(model, site, host, gate) !== undefined);
    const first = failing[0];
    if (first) {
      const more = failing.length > 1 ? ` (and ${failing.length - 1} more hosts)` : '';
      const message = `rendering for host ${first[0]}/${first[1].name}: ${renderProblem(model, first[0], first[1], gate)}${more}`;
      out.push(at(ref, [...path, i, 'query'], 'gate', message));
    }
  });
}

/** Every gate of the sites' policies and the host groups: its PromQL, rendered for each host it judges. */
export function checkGates(sot: LoadedSot, model: Model): Diagnostic[] {
  const out: Diagnostic[] = [];
  const all: [string, Host][] = Object.entries(model.sites).flatMap(([id, s]) =>
    s.hosts.map((h): [string, Host] => [id, h]),
  );
  for (const { value: site, ref } of sot.sites) {
    const hosts = all.filter(([id]) => id === site.id);
    checkGateList(model, ref, ['policy', 'gates'], site.policy.gates ?? [], hosts, out);
  }
  for (const { value: group, ref } of sot.groups) {
    const hosts = all.filter(([, h]) => h.group === group.id);
    checkGateList(model, ref, ['rollout', 'gates'], group.rollout.gates ?? [], hosts, out);
  }
  return out;
}
