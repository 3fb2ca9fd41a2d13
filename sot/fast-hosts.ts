// Hosts files through js-yaml (fast-yaml.ts): the part of a source of truth that grows with the site.
import { HostSchema, type Host } from '../schemas/host';
import type { DocRef } from './diagnostics';
import { fastParse, lazyRefs } from './fast-yaml';
import type { TextFile } from './read-tree';

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
