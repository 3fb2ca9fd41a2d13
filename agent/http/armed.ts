import { HTTPException } from 'hono/http-exception';
import type { ArmEntry } from '../../schemas/agent';
import { ipxeScript, renderStage, type RenderedStage } from '../../sot/boot-chain';
import type { BootEventKind } from '../../schemas/rollout';
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
  return (await cachedStage(deps, entry, stage)).stage;
}

/**
 * The iPXE script of an armed host's stage, rendered once per arming: the cache entry is the
 * rendered stage's, keyed by everything the script depends on (the model of the entry's commit, the
 * agent, site, host and stage, and the arming's token). Every request looks the MAC up in the
 * netboot table first, so a disarmed host gets the local-boot script and a re-armed one (a new
 * token, commit or stage) a new script at once.
 */
export async function armedScript(deps: AssetAppDeps, entry: ArmEntry): Promise<string> {
  const cached = await cachedStage(deps, entry, entry.stage);
  return (cached.script ??= ipxeScript(cached.stage));
}

async function cachedStage(deps: AssetAppDeps, entry: ArmEntry, stage: number): Promise<CachedStage> {
  const model = await deps.models.forCommit(entry.commit);
  if (!model) throw new HTTPException(503, { message: `no model of commit ${entry.commit} on this agent` });
  const site = entry.site || deps.site;
  let rendered = renderedStages.get(model);
  if (!rendered) renderedStages.set(model, (rendered = new Map<string, CachedStage>()));
  // The agent too: its URLs are in the stage, and two agents may share a model (in one process).
  const key = `${deps.agent ?? ''}/${site}/${entry.host}/${stage}`;
  const hit = rendered.get(key);
  // A hit was found valid when rendered (the model never changes): no host or stage check again.
  if (hit && hit.token === entry.token) return hit;
  const host = own(model.sites, site)?.hosts.find((h) => h.name === entry.host);
  if (!host) throw new HTTPException(503, { message: `host ${entry.host} is not in commit ${entry.commit}` });
  const group = own(model.groups, host.group);
  if (!group || stage < 1 || stage > group.boots.length)
    throw new HTTPException(404, { message: `host ${entry.host} has no boot stage ${stage}` });
  const cached: CachedStage = {
    token: entry.token,
    stage: renderStage(model, site, host, stage - 1, entry.token, deps.agent),
  };
  rendered.set(key, cached);
  return cached;
}

/**
 * Rendered stages per model object: a model revision never changes, and rendering (Nunjucks) on every
 * script and file request cost ~0.2 ms per armed host per request (docs/benchmarks.md). One per host
 * and stage, for the token of its latest arming, with its iPXE script once asked for.
 */
const renderedStages = new WeakMap<object, Map<string, CachedStage>>();

interface CachedStage {
  token: string;
  stage: RenderedStage;
  script?: string;
}

/** Reports a boot request of an armed host to the deps' event sink. */
export function emitBoot(
  deps: AssetAppDeps,
  kind: BootEventKind,
  mac: string,
  stage: number,
  detail?: string,
): void {
  const at = (deps.now?.() ?? new Date()).toISOString();
  deps.events.emit({ kind, mac, stage, at, ...(detail ? { detail } : {}) });
}

/** The path of an asset URL when it is served by this agent (`…/files/x` → `/files/x`). */
export function localFilePath(url: string): string | undefined {
  const pathname = /^https?:\/\//.test(url) ? new URL(url).pathname : url;
  return pathname.startsWith('/files/') ? pathname : undefined;
}
