// Prometheus' HTTP API, instant queries only: GET <base>/api/v1/query?query=... (the stable v1 API).

/** One sample of an instant query: its labels and its value as Prometheus wrote it ("0.5", "NaN", "+Inf"). */
export interface PromSample {
  labels: Record<string, string>;
  value: string;
}

export interface PromResult {
  /** The evaluation time Prometheus reports, in ms since the epoch. */
  at: number;
  samples: PromSample[];
}

/** Prometheus could not be asked or did not answer as Prometheus does: the gate's `on_unreachable` decides. */
export class PromUnreachable extends Error {}
/** Prometheus answered and refused the query (bad PromQL, a range vector): always a failure. */
export class PromQueryError extends Error {}

interface ApiAnswer {
  status?: string;
  error?: string;
  errorType?: string;
  data?: { resultType?: string; result?: unknown };
}

export function queryUrl(base: string, query: string): URL {
  const url = new URL('api/v1/query', base.endsWith('/') ? base : `${base}/`);
  url.searchParams.set('query', query);
  return url;
}

/** A sample's value as a number; Prometheus writes infinities as "+Inf" and "-Inf". */
export function sampleValue(value: string): number {
  if (value === '+Inf' || value === 'Inf') return Infinity;
  if (value === '-Inf') return -Infinity;
  return Number(value);
}

function parseResult(answer: ApiAnswer): PromResult {
  const type = answer.data?.resultType;
  const result = answer.data?.result;
  if (type === 'scalar' && Array.isArray(result)) {
    return { at: Number(result[0]) * 1000, samples: [{ labels: {}, value: String(result[1]) }] };
  }
  if (type === 'vector' && Array.isArray(result)) {
    let at = Date.now();
    const samples = (result as { metric?: Record<string, string>; value?: [number, string] }[]).map((s) => {
      if (s.value) at = s.value[0] * 1000;
      return { labels: s.metric ?? {}, value: String(s.value?.[1]) };
    });
    return { at, samples };
  }
  throw new PromQueryError(
    `the query returns a ${type ?? 'result of no known type'}: a gate needs an instant vector or a scalar`,
  );
}

/**
 * Runs an instant query. Throws PromUnreachable when Prometheus cannot be reached, times out or answers
 * other than its API does (5xx, not JSON); PromQueryError when it refuses the query.
 */
export async function queryPrometheus(
  base: string,
  query: string,
  options: { token?: string; timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<PromResult> {
  const url = queryUrl(base, query);
  const timeout = AbortSignal.timeout(options.timeoutMs ?? 10_000);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  let res: Response;
  try {
    res = await fetch(url, {
      headers: {
        accept: 'application/json',
        ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      },
      signal,
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = timeout.aborted
      ? 'no answer within the timeout'
      : (cause?.code ?? cause?.message ?? String(err));
    throw new PromUnreachable(`Prometheus at ${url.origin} cannot be reached: ${why}`);
  }
  const text = await res.text().catch(() => '');
  let answer: ApiAnswer;
  try {
    answer = JSON.parse(text) as ApiAnswer;
  } catch {
    throw new PromUnreachable(`Prometheus at ${url.origin} answered HTTP ${res.status}, not its JSON API`);
  }
  if (answer.status === 'success') return parseResult(answer);
  const message = `${answer.errorType ?? 'error'}: ${answer.error ?? 'no reason given'}`;
  if (res.status === 400 || res.status === 422 || answer.errorType === 'bad_data')
    throw new PromQueryError(`Prometheus refused the query (${message})`);
  throw new PromUnreachable(`Prometheus at ${url.origin} answered HTTP ${res.status} (${message})`);
}
