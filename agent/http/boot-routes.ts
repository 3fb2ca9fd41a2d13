import { Hono, type Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { RequestIdVariables } from 'hono/request-id';
import type { BootEventKind } from '../../schemas/rollout';
import { emitBoot, normalizeMac, renderArmed } from './armed';
import { bootRequestOf, guardBootRequest, remoteAddress } from './boot-guard';
import type { AssetAppDeps } from './deps';
import { chainScript, hostScript } from './scripts';

const UNATTENDED_TYPES: Record<string, string> = {
  ignition: 'application/json',
  'cloud-config': 'text/cloud-config; charset=utf-8',
};

type BootContext = Context<{ Variables: RequestIdVariables }>;

function stageParam(text: string): number {
  const stage = Number(text);
  if (!Number.isInteger(stage) || stage < 1)
    throw new HTTPException(400, { message: `bad boot stage ${text}` });
  return stage;
}

/** The iPXE scripts, unattended configs and checkpoint callbacks, keyed by the MAC in the path. */
export function bootRoutes(deps: AssetAppDeps) {
  const app = new Hono<{ Variables: RequestIdVariables }>();
  const emit = (kind: BootEventKind, mac: string, stage: number, detail?: string) =>
    emitBoot(deps, kind, mac, stage, detail);
  const armed = async (text: string) => {
    const mac = normalizeMac(text);
    return mac ? deps.netboot.lookup(mac) : undefined;
  };

  app.get('/boot.ipxe', (c) => c.text(chainScript(deps, remoteAddress(c), new URL(c.req.url).origin)));

  app.get('/ipxe/:mac', async (c) =>
    c.text(await hostScript(deps, { ...bootRequestOf(c), reqId: c.get('requestId') }, c.req.param('mac'))),
  );

  const armedFor = async (c: BootContext, what: string) => {
    const mac = c.req.param('mac') ?? '';
    const entry = await armed(mac);
    if (!entry) throw new HTTPException(404, { message: `${what} of unarmed MAC ${mac}` });
    const stage = stageParam(c.req.param('stage') ?? '');
    guardBootRequest(deps, bootRequestOf(c), entry, { token: c.req.param('token'), stage }, what);
    return { entry, stage };
  };

  const unattended = async (c: BootContext) => {
    const { entry, stage } = await armedFor(c, 'unattended config');
    const rendered = await renderArmed(deps, entry, stage);
    if (!rendered.unattended)
      throw new HTTPException(404, { message: `stage ${stage} has no unattended config` });
    emit('unattended', entry.mac, stage);
    return { entry, unattended: rendered.unattended };
  };

  // The URL without a token is routed too, so that its refusal is logged and counted.
  app.on('GET', ['/unattended/:mac/:stage', '/unattended/:mac/:stage/:token'], async (c) => {
    const { unattended: u } = await unattended(c);
    const type = UNATTENDED_TYPES[u.type] ?? 'text/plain; charset=utf-8';
    return c.body(u.content, 200, { 'Content-Type': type });
  });

  // cloud-init's NoCloud datasource (`ds=nocloud-net;s=<url>/`) fetches these two beside each other.
  app.get('/unattended/:mac/:stage/:token/user-data', async (c) => {
    const { unattended: u } = await unattended(c);
    return c.body(u.content, 200, { 'Content-Type': 'text/plain; charset=utf-8' });
  });
  app.get('/unattended/:mac/:stage/:token/meta-data', async (c) => {
    const { entry } = await armedFor(c, 'unattended meta-data');
    return c.text(`instance-id: ${entry.host}-${entry.commit}\nlocal-hostname: ${entry.host}\n`);
  });

  // Only the token completes a boot: it is in no URL but those the host's own script hands it.
  app.on(['GET', 'POST'], ['/checkpoint/:mac/:stage', '/checkpoint/:mac/:stage/:token'], async (c) => {
    const { entry, stage } = await armedFor(c, 'checkpoint');
    emit('checkpoint', entry.mac, stage);
    return c.body(null, 204);
  });

  app.post('/image/:mac/:stage/:token', async (c) => {
    const { entry, stage } = await armedFor(c, 'image report');
    const rendered = await renderArmed(deps, entry, stage);
    if (!rendered.image) throw new HTTPException(404, { message: `stage ${stage} writes no image` });
    const report = imageReport(rendered.image.checksum, c.req.query());
    emit('image', entry.mac, stage, report.detail);
    return c.text(`${report.detail}\n`, report.status);
  });

  return app;
}

const DIGITS = /^\d{1,20}$/;
const CHECKSUM = /^(sha256|sha512):[0-9a-f]{1,128}$/;

/**
 * What a deploy ramdisk's report says, as the `image` event's detail: progress (`written=<n>`), the
 * checksum it read back from the disk (`got=`, compared here with the stage's), or why it gave up
 * (`error=`). The agent's comparison is the one the workflow goes by; the ramdisk makes its own.
 */
function imageReport(
  expected: string,
  query: Record<string, string>,
): { detail: string; status: 200 | 400 | 409 } {
  const { written, got, error } = query;
  if (written !== undefined && !DIGITS.test(written))
    throw new HTTPException(400, { message: 'written= must be a byte count' });
  const bytes = written === undefined ? '' : ` (${written} bytes)`;
  if (error !== undefined)
    return { detail: `failed: ${error.replace(/[^\x20-\x7e]/g, '?').slice(0, 200)}`, status: 200 };
  if (got === undefined) {
    if (written === undefined) throw new HTTPException(400, { message: 'written=, got= or error= expected' });
    return { detail: `written ${written} bytes`, status: 200 };
  }
  if (!CHECKSUM.test(got))
    throw new HTTPException(400, { message: 'got= must be sha256:<hex> or sha512:<hex>' });
  if (got === expected) return { detail: `verified ${got}${bytes}`, status: 200 };
  return { detail: `checksum mismatch: expected ${expected}, got ${got}${bytes}`, status: 409 };
}
