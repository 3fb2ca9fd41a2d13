// What a plan compares of a host's boot stages, kept per model: validation renders every stage of every
// host anyway, so it leaves these behind on the model it returns, and a plan of 50,000 hosts does not
// render them all a second time.
import { createHash } from 'node:crypto';
import type { Host } from '../schemas/host';
import type { Model } from '../schemas/model';
import { renderBootChain, type RenderedBoot } from './boot-chain';

export interface StageState {
  profile: string;
  os: string;
  kernel: string;
  initrds: string;
  cmdline: string;
  /** The unattended config's type and a digest of its content, or empty. */
  unattended: string;
}

const digest = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 16);

export function stageState(s: RenderedBoot): StageState {
  return {
    profile: s.profile,
    os: s.os,
    kernel: s.kernel,
    initrds: s.initrds.join(' '),
    cmdline: s.cmdline,
    unattended: s.unattended ? `${s.unattended.type}:${digest(s.unattended.content)}` : '',
  };
}

// Keyed by the model and its host objects, which nothing changes once a model is built.
const remembered = new WeakMap<Model, WeakMap<Host, StageState[]>>();

/** Records the states rendered while validating `model`, for its plans. */
export function rememberStates(model: Model, states: ReadonlyMap<Host, StageState[]>): void {
  const byHost = new WeakMap<Host, StageState[]>();
  for (const [host, list] of states) byHost.set(host, list);
  remembered.set(model, byHost);
}

/** A host's boot stages as a plan compares them: as validation rendered them, or rendered now. */
export function bootStates(model: Model, siteId: string, host: Host): StageState[] {
  return remembered.get(model)?.get(host) ?? renderBootChain(model, siteId, host).map(stageState);
}
