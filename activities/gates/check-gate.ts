// One evaluation of a metric gate, run by the server (docs/operations/rollouts.md#metric-gates).
import type { GateCheck, PlannedGate } from '../../schemas/gates';
import { satisfies } from '../../schemas/gates';
import type { Model } from '../../schemas/model';
import { own } from '../../schemas/common';
import { hostContext, renderString } from '../../sot/render';
import type { SecretResolver } from '../jobs/secrets';
import { PromQueryError, PromUnreachable, queryPrometheus, sampleValue } from './prometheus';

export interface CheckGateInput {
  commit: string;
  site: string;
  /** The hosts the gate judges: its query is rendered for each (once, when it names none). */
  hosts: string[];
  gate: PlannedGate;
}

export interface CheckGateDeps {
  model: (commit: string) => Promise<Model>;
  resolveSecret: SecretResolver;
  /** Per query; default 10 s. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

export function gateName(gate: Pick<PlannedGate, 'name' | 'query'>): string {
  return gate.name ?? gate.query;
}

function labelsText(labels: Record<string, string>): string {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  return pairs.length > 0 ? `{${pairs.join(', ')}}` : '';
}

/** The gate's query for each host, rendered with the variables templates see (its last boot stage). */
export function renderQueries(model: Model, input: CheckGateInput): string[] {
  const siteModel = own(model.sites, input.site);
  if (!siteModel) throw new Error(`site ${input.site} is not in commit ${input.commit}`);
  const queries = new Set<string>();
  for (const name of input.hosts) {
    const host = siteModel.hosts.find((h) => h.name === name);
    if (!host) throw new Error(`host ${input.site}/${name} is not in commit ${input.commit}`);
    const stages = own(model.groups, host.group)?.boots.length ?? 1;
    const context = hostContext(model, input.site, host, stages - 1);
    queries.add(renderString(model, input.gate.query, context, `gate ${gateName(input.gate)} for ${name}`));
  }
  return [...queries];
}

async function checkQuery(deps: CheckGateDeps, input: CheckGateInput, query: string, token?: string) {
  const { gate } = input;
  const name = gateName(gate);
  const failed = (at: number, why: string, extra: Partial<GateCheck> = {}): GateCheck => ({
    ok: false,
    gate: name,
    query,
    at: iso(at),
    reason: `gate ${JSON.stringify(name)} failed at ${iso(at)}: ${why}`,
    ...extra,
  });
  let result;
  try {
    result = await queryPrometheus(gate.prometheus, query, {
      token,
      timeoutMs: deps.timeoutMs,
      signal: deps.signal,
    });
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    if (err instanceof PromUnreachable && gate.on_unreachable === 'pass')
      return { ok: true, gate: name, query, at: iso(Date.now()), reason: `${why} (on_unreachable: pass)` };
    if (err instanceof PromUnreachable || err instanceof PromQueryError)
      return failed(Date.now(), `${query}: ${why}`);
    throw err;
  }
  if (result.samples.length === 0) {
    if (gate.on_empty === 'pass') return { ok: true, gate: name, query, at: iso(result.at) };
    return failed(result.at, `${query} returned no sample (on_empty: fail), must be ${gate.must}`);
  }
  const bad = result.samples.find((s) => !satisfies(sampleValue(s.value), gate.must));
  if (bad) {
    const labels = labelsText(bad.labels);
    return failed(result.at, `${query} = ${bad.value}${labels ? ` ${labels}` : ''}, must be ${gate.must}`, {
      value: bad.value,
      labels,
    });
  }
  return { ok: true, gate: name, query, value: result.samples[0]?.value, at: iso(result.at) };
}

/**
 * Evaluates the gate once for the given hosts: its first failure, or a pass. Never throws for what
 * Prometheus says or does not say: the rollout decides on the check, which names query, value and time.
 */
export async function checkGate(deps: CheckGateDeps, input: CheckGateInput): Promise<GateCheck> {
  const { gate } = input;
  const name = gateName(gate);
  const now = iso(Date.now());
  let queries: string[];
  let token: string | undefined;
  try {
    queries = input.hosts.length > 0 ? renderQueries(await deps.model(input.commit), input) : [gate.query];
    token = gate.token ? await deps.resolveSecret(gate.token) : undefined;
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    return {
      ok: false,
      gate: name,
      query: gate.query,
      at: now,
      reason: `gate ${JSON.stringify(name)} cannot be evaluated at ${now}: ${why}`,
    };
  }
  let last: GateCheck | undefined;
  for (const query of queries) {
    last = await checkQuery(deps, input, query, token);
    // A failure, or a Prometheus that cannot be reached and may not be (on_unreachable: pass): the
    // other hosts' queries would only wait for the same timeout.
    if (!last.ok || last.reason) return last;
  }
  return last ?? { ok: true, gate: name, query: gate.query, at: now };
}
