import { isDeepStrictEqual } from 'node:util';
import { JobError } from './errors';
import { OutputCollector } from './output';
import { resolveJobSecret } from './secrets';
import type { AttemptResult, HttpJob, JobRunner, JobRunnerDeps } from './types';

/** How much of a body `expect_json` parses; health endpoints answer in bytes, not megabytes. */
export const JSON_BODY_MAX_BYTES = 1024 * 1024;

export const runHttpJob: JobRunner<HttpJob> = async (job, _target, deps, signal) => {
  const headers = await prepareRequest(job, deps);
  const what = `${job.method} ${job.url}`;
  let response: Response;
  try {
    response = await fetch(job.url, { method: job.method, headers, body: job.body, signal });
  } catch (err) {
    return { ok: false, output: '', error: `${what}: ${fetchFailure(err, signal)}` };
  }
  const output = new OutputCollector('head');
  output.push(`HTTP ${response.status} ${response.statusText}\n`);
  let body: Buffer;
  try {
    body = await readBody(response, output, job.expect_json ? JSON_BODY_MAX_BYTES : 0);
  } catch (err) {
    return { ok: false, output: output.toString(), error: `${what}: ${fetchFailure(err, signal)}` };
  }
  return { output: output.toString(), ...judge(job, response.status, body) };
};

/** Checks what fetch would refuse on every attempt, and builds the headers. */
async function prepareRequest(job: HttpJob, deps: JobRunnerDeps): Promise<Headers> {
  let url: URL;
  try {
    url = new URL(job.url);
  } catch {
    throw new JobError(`invalid URL ${job.url}`, false);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new JobError(`URL ${job.url} is not http or https`, false);
  if (url.username || url.password)
    throw new JobError('the URL must not hold credentials; use bearer_token', false);
  if (job.body !== undefined && job.method === 'GET')
    throw new JobError('a GET request cannot have a body', false);
  const headers = new Headers();
  for (const [name, value] of Object.entries(job.headers)) {
    try {
      headers.set(name, value);
    } catch {
      throw new JobError(`invalid HTTP header ${name}`, false);
    }
  }
  if (job.bearer_token) {
    const token = await resolveJobSecret(deps, job.bearer_token, 'bearer_token');
    try {
      headers.set('authorization', `Bearer ${token}`);
    } catch {
      // The runtime's message would quote the token.
      throw new JobError('the bearer token is not a valid HTTP header value', false);
    }
  }
  return headers;
}

/** Reads the body into the output (which keeps its head); keeps up to `keepBytes` of it whole for JSON. */
async function readBody(response: Response, output: OutputCollector, keepBytes: number): Promise<Buffer> {
  const kept: Buffer[] = [];
  let keptBytes = 0;
  if (!response.body) return Buffer.alloc(0);
  for await (const chunk of response.body) {
    const buf = Buffer.from(chunk as Uint8Array);
    output.push(buf);
    // One chunk past the limit is kept, so an oversized body is recognised as such.
    if (keptBytes <= keepBytes) {
      kept.push(buf);
      keptBytes += buf.length;
    }
  }
  return Buffer.concat(kept);
}

function judge(job: HttpJob, status: number, body: Buffer): Omit<AttemptResult, 'output'> {
  if (!job.expect_status.includes(status))
    return { ok: false, error: `expected status ${job.expect_status.join(' or ')}, got ${status}` };
  const expectation = job.expect_json;
  if (!expectation) return { ok: true };
  if (body.length > JSON_BODY_MAX_BYTES)
    return {
      ok: false,
      error: `response body is larger than ${JSON_BODY_MAX_BYTES / 1024} KiB; cannot check JSON`,
    };
  let document: unknown;
  try {
    document = JSON.parse(body.toString('utf8'));
  } catch {
    return { ok: false, error: `response is not JSON (expected ${expectation.path} in it)` };
  }
  const found = lookup(document, expectation.path);
  if (!found.present) return { ok: false, error: `response JSON has no ${expectation.path}` };
  // Strict: "true" (a string) is not true (a boolean) unless the SoT wrote it the same way.
  if (isDeepStrictEqual(found.value, expectation.equals)) return { ok: true };
  return {
    ok: false,
    error: `response JSON ${expectation.path} is ${show(found.value)}, expected ${show(expectation.equals)}`,
  };
}

/** A dotted path: object keys, and array indexes as numbers (`items.0.state`). */
export function lookup(document: unknown, path: string): { present: boolean; value?: unknown } {
  let current: unknown = document;
  for (const segment of path.split('.')) {
    if (Array.isArray(current) && /^\d+$/.test(segment) && Number(segment) < current.length) {
      current = current[Number(segment)];
    } else if (
      typeof current === 'object' &&
      current !== null &&
      !Array.isArray(current) &&
      Object.hasOwn(current, segment)
    ) {
      current = (current as Record<string, unknown>)[segment];
    } else {
      return { present: false };
    }
  }
  return { present: true, value: current };
}

function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 200 ? `${text.slice(0, 200)}...` : text;
}

function fetchFailure(err: unknown, signal: AbortSignal): string {
  if (signal.aborted) return 'stopped';
  const cause = (err as { cause?: NodeJS.ErrnoException }).cause;
  if (cause?.code === 'ECONNREFUSED') return 'connection refused';
  if (cause?.code) return `${cause.code}${cause.message ? ` (${cause.message})` : ''}`;
  return cause?.message ?? (err instanceof Error ? err.message : String(err));
}
