import { HTTPException } from 'hono/http-exception';
import type { ArmEntry } from '../../schemas/agent';
import { renderStage, type RenderedStage } from '../../sot/boot-chain';
import type { AssetAppDeps } from './deps';
import { own } from '../../schemas/common';

/** `52-54-00-AA-BB-CC` (iPXE's `hexhyp`) or `52:54:00:aa:bb:cc` as the table writes it; undefined otherwise. */
export function normalizeMac(text: string): string | undefined {
  const mac = text.toLowerCase().replaceAll('-', ':');
  return /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/.test(mac) ? mac : undefined;
}

/**
 * Renders a stage (1-based) of an armed host from the model of the commit it was armed with. A
 * missing model or host is a 503: iPXE's `chain` then fails and the host boots its disk.
 */
export async function renderArmed(
  deps: AssetAppDeps,
  entry: ArmEntry,
  stage: number,
): Promise<RenderedStage> {
  const model = await deps.models.forCommit(entry.commit);
  if (!model) throw new HTTPException(503, { message: `no model of commit ${entry.commit} on this agent` });
  const site = entry.site || deps.site;
  const host = own(model.sites, site)?.hosts.find((h) => h.name === entry.host);
  if (!host) throw new HTTPException(503, { message: `host ${entry.host} is not in commit ${entry.commit}` });
  const group = own(model.groups, host.group);
  if (!group || stage < 1 || stage > group.boots.length)
    throw new HTTPException(404, { message: `host ${entry.host} has no boot stage ${stage}` });
  let rendered = renderedStages.get(model);
  if (!rendered) renderedStages.set(model, (rendered = new Map<string, CachedStage>()));
  // The agent too: its URLs are in the stage, and two agents may share a model (in one process).
  const key = `${deps.agent ?? ''}/${site}/${host.name}/${stage}`;
  let cached = rendered.get(key);
  if (cached?.token !== entry.token) {
    cached = {
      token: entry.token,
      stage: renderStage(model, site, host, stage - 1, entry.token, deps.agent),
    };
    rendered.set(key, cached);
  }
  return cached.stage;
}

/**
 * Rendered stages per model object: a model revision never changes, and rendering (Nunjucks) on every
 * script and file request cost ~0.2 ms per armed host per request (docs/benchmarks.md). One per host
 * and stage, for the token of its latest arming.
 */
const renderedStages = new WeakMap<object, Map<string, CachedStage>>();

interface CachedStage {
  token: string;
  stage: RenderedStage;
}

/** The path of an asset URL when it is served by this agent (`…/files/x` → `/files/x`). */
export function localFilePath(url: string): string | undefined {
  const pathname = /^https?:\/\//.test(url) ? new URL(url).pathname : url;
  return pathname.startsWith('/files/') ? pathname : undefined;
}
