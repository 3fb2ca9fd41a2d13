// Hosts files, the part of a source of truth that grows with the site: read through js-yaml
// (fast-yaml.ts), and bounded.
import { HostSchema, type Host } from '../schemas/host';
import type { Diagnostic, DocRef } from './diagnostics';
import { fastParse, lazyRefs } from './fast-yaml';
import type { TextFile } from './read-tree';

/**
 * The most hosts a source of truth may hold: twice the 50,000 that validate and plan are measured at
 * (under 10 s each). Beyond it the load stops reading hosts, so a bigger one is a clear message, not
 * minutes of work and an out-of-memory crash.
 */
export const MAX_HOSTS = 100_000;

/** The problem when `count` hosts read so far pass MAX_HOSTS, at the file that passed it. */
export function hostsLimitProblem(count: number, rel: string): Diagnostic | undefined {
  if (count <= MAX_HOSTS) return undefined;
  const message = `too many hosts (more than ${MAX_HOSTS} in the source of truth); split it into several`;
  return { file: rel, line: 1, path: '(file)', message, check: 'limit' };
}

type ParsedHosts = { value: Host; line: number }[];

/**
 * Hosts files already read, by their text: a plan reads two trees that mostly share their hosts files,
 * and reads each distinct one once. The hosts are shared between the two models, which nothing changes.
 */
export type HostsFileCache = Map<string, ParsedHosts>;

/**
 * The hosts of a file read with js-yaml, or undefined when it has anything to report: then `yaml` reads
 * it again to say what and where.
 */
export function readHostsFast(
  file: TextFile,
  cache?: HostsFileCache,
): { value: Host; ref: DocRef }[] | undefined {
  let hosts = cache?.get(file.text);
  if (!hosts) {
    const fast = fastParse(file.text);
    if (!fast) return undefined;
    hosts = [];
    for (const { data, line } of fast.docs) {
      if (data === null || data === undefined) continue;
      const result = HostSchema.safeParse(data);
      if (!result.success) return undefined;
      hosts.push({ value: result.data, line });
    }
    cache?.set(file.text, hosts);
  }
  const refAt = lazyRefs(file.rel, file.text);
  return hosts.map(({ value, line }) => ({ value, ref: refAt(line) }));
}
