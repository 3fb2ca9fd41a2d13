// The iPXE scripts every booting host fetches: the chain script and its per-host stage script. Served
// by the Hono routes (boot-routes.ts) and by the direct listener (listener.ts) alike, from here.
import { LEAVE_FOR_DISK, LOCAL_BOOT_SETTING, localBootScript } from '../../sot/boot-chain';
import { chainPeers } from '../../sot/serving-agent';
import { armedScript, emitBoot, normalizeMac } from './armed';
import { guardBootRequest, type BootRequest } from './boot-guard';
import type { AssetAppDeps } from './deps';

const LOCAL_BOOT = localBootScript();

/**
 * The chain script. iPXE expands ${mac:hexhyp} itself, so one static script serves every host
 * (matchbox does the same). The agent that answered comes first, not whichever agent is first in the
 * site; the other agents of the client's subnet follow, each tried only when the one before failed
 * (it died meanwhile). `origin` is the request's, used when the agent has no asset URL.
 */
export function chainScript(deps: AssetAppDeps, remote: string | undefined, origin: string): string {
  const site = deps.models.current().sites[deps.site]?.site;
  const agents = site?.agents ?? [];
  const agent = deps.agent === undefined ? agents[0] : agents.find((a) => a.name === deps.agent);
  const own = (agent?.asset_url ?? origin).replace(/\/+$/, '');
  const bases = [own, ...(site ? chainPeers(site, agent, remote) : [])];
  // Each agent's script is tried only when the one before failed. An unarmed host's own script leaves
  // for its disk, under UEFI with a non-zero status that fails its `chain` too: the setting it left
  // ends the list there (another agent may still hold an arming the answering one has dropped).
  const local = `isset \${${LOCAL_BOOT_SETTING}}`;
  const chains = bases.flatMap((base) => [`chain --autofree ${base}/ipxe/\${mac:hexhyp}`, local]);
  const none = 'echo vaquero: no agent served a script, booting from local disk';
  return ['#!ipxe', [...chains, none].join(' || '), ...LEAVE_FOR_DISK, ''].join('\n');
}

/**
 * A host's `/ipxe/<mac>` script: its armed stage's (a boot event), or the local-boot script when the
 * MAC is not armed. The script hands the host its token: only the host's own lease address may fetch
 * it (the guard throws BootRefused otherwise).
 */
export async function hostScript(
  deps: AssetAppDeps,
  req: BootRequest & { reqId: string | undefined },
  macText: string,
): Promise<string> {
  const mac = normalizeMac(macText);
  const entry = mac ? await deps.netboot.lookup(mac) : undefined;
  if (!entry) {
    deps.log({ level: 'info', msg: 'unarmed host: local boot', mac: macText, reqId: req.reqId });
    return LOCAL_BOOT;
  }
  guardBootRequest(deps, req, entry, { token: null }, 'iPXE script');
  const script = await armedScript(deps, entry);
  emitBoot(deps, 'ipxe', entry.mac, entry.stage);
  return script;
}
