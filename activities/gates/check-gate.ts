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
  /** Queries in flight at once; default GATE_QUERY_CONCURRENCY. */
  concurrency?: number;
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

/**
 * Queries one check keeps in flight: a wave of 2,000 hosts asks in rounds of this many, not one after
 * another, and leaves room under Prometheus' own limit (`--query.max-concurrency`, 20 by default).
 */
export const GATE_QUERY_CONCURRENCY = 16;
/** Failing hosts a check names beyond the first (the reason and `hosts` stay small in history). */
const NAMED_HOSTS = 10;

/**
 * The gate's query for each host, rendered with the variables templates see (its last boot stage):
 * each distinct query once, with the hosts it judges, in the order of `input.hosts`.
 */
export function renderQueries(model: Model, input: CheckGateInput): Map<string, string[]> {
  const siteModel = own(model.sites, input.site);
  if (!siteModel) throw new Error(`site ${input.site} is not in commit ${input.commit}`);
  const byName = new Map(siteModel.hosts.map((h) => [h.name, h]));
  const queries = new Map<string, string[]>();
  for (const name of input.hosts) {
    const host = byName.get(name);
    if (!host) throw new Error(`host ${input.site}/${name} is not in commit ${input.commit}`);
    const stages = own(model.groups, host.group)?.boots.length ?? 1;
    const context = hostContext(model, input.site, host, stages - 1);
    const query = renderString(model, input.gate.query, context, `gate ${gateName(input.gate)} for ${name}`);
    const hosts = queries.get(query);
    if (hosts) hosts.push(name);
    else queries.set(query, [name]);
  }
  return queries;
}

/** "lab-03", "3 hosts (a, b, c)": the hosts a failure names, the first NAMED_HOSTS of them. */
function hostsText(hosts: string[]): string {
  if (hosts.length === 1) return hosts[0]!;
  const named = hosts.slice(0, NAMED_HOSTS).join(', ');
  return `${hosts.length} hosts (${named}${hosts.length > NAMED_HOSTS ? ', ...' : ''})`;
}

/** One query's check; a failure's `why` is the part of the reason after gate, time and hosts. */
type Outcome = GateCheck & { why?: string; judged: string[] };

async function checkQuery(
  deps: CheckGateDeps,
  gate: PlannedGate,
  query: string,
  judged: string[],
  token?: string,
): Promise<Outcome> {
  const name = gateName(gate);
  const failed = (at: number, why: string, extra: Partial<GateCheck> = {}): Outcome => ({
    ok: false,
    gate: name,
    query,
    at: iso(at),
    why,
    judged,
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
      return {
        ok: true,
        gate: name,
        query,
        at: iso(Date.now()),
        reason: `${why} (on_unreachable: pass)`,
        judged,
      };
    if (err instanceof PromUnreachable || err instanceof PromQueryError)
      return failed(Date.now(), `${query}: ${why}`);
    throw err;
  }
  if (result.samples.length === 0) {
    if (gate.on_empty === 'pass') return { ok: true, gate: name, query, at: iso(result.at), judged };
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
  return { ok: true, gate: name, query, value: result.samples[0]?.value, at: iso(result.at), judged };
}

/** An outcome that ends the evaluation: a failure, or Prometheus unreachable and allowed to be. */
const decisive = (c: Outcome) => !c.ok || c.reason !== undefined;

/**
 * Runs the queries `limit` at a time, in order; once one is decisive no other starts (those in flight
 * finish). Returns the outcomes of the queries that ran, in query order.
 */
async function runBounded(
  queries: [string, string[]][],
  limit: number,
  run: (query: string, judged: string[]) => Promise<Outcome>,
): Promise<Outcome[]> {
  const outcomes: (Outcome | undefined)[] = new Array<Outcome | undefined>(queries.length);
  let next = 0;
  let stop = false;
  const worker = async () => {
    while (!stop && next < queries.length) {
      const i = next++;
      const [query, judged] = queries[i]!;
      outcomes[i] = await run(query, judged);
      if (decisive(outcomes[i])) stop = true;
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, queries.length)) }, worker));
  return outcomes.filter((o): o is Outcome => o !== undefined);
}

/**
 * The check the rollout records: the first decisive outcome in host order, or the last pass. A failure
 * names its hosts, and the hosts whose queries failed too among those that ran.
 */
function verdict(outcomes: Outcome[], hostCount: number, perHost: boolean): GateCheck {
  const first = outcomes.find(decisive) ?? outcomes[outcomes.length - 1]!;
  const { why, judged: its, ...check } = first;
  // A query that renders the same for every host of the wave judges the wave, not a host.
  const judged = perHost ? its : [];
  const checked = hostCount > 0 ? { checked: outcomes.reduce((n, o) => n + o.judged.length, 0) } : {};
  if (check.ok) return { ...check, ...checked };
  const others = outcomes.filter((o) => o !== first && !o.ok).flatMap((o) => o.judged);
  const on = judged.length > 0 ? ` on ${hostsText(judged)}` : '';
  const also = others.length > 0 ? ` (failing too: ${hostsText(others)})` : '';
  const hosts = [...judged, ...others].slice(0, NAMED_HOSTS + 1);
  return {
    ...check,
    reason: `gate ${JSON.stringify(check.gate)} failed at ${check.at}${on}${also}: ${why}`,
    ...(hosts.length > 0 ? { hosts } : {}),
    ...checked,
  };
}

/**
 * Evaluates the gate once for the given hosts: its first failure, or a pass. Never throws for what
 * Prometheus says or does not say: the rollout decides on the check, which names query, value, time
 * and hosts. Each distinct rendered query is asked once, GATE_QUERY_CONCURRENCY at a time; the first
 * failure stops asking.
 */
export async function checkGate(deps: CheckGateDeps, input: CheckGateInput): Promise<GateCheck> {
  const { gate } = input;
  const name = gateName(gate);
  const now = iso(Date.now());
  let queries: Map<string, string[]>;
  let token: string | undefined;
  try {
    queries =
      input.hosts.length > 0
        ? renderQueries(await deps.model(input.commit), input)
        : new Map([[gate.query, []]]);
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
  const limit = deps.concurrency ?? GATE_QUERY_CONCURRENCY;
  const outcomes = await runBounded([...queries], limit, (query, judged) =>
    checkQuery(deps, gate, query, judged, token),
  );
  return verdict(outcomes, input.hosts.length, queries.size > 1 || input.hosts.length === 1);
}
