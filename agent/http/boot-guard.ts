import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ArmEntry } from '../../schemas/agent';
import type { AssetAppDeps } from './deps';

/** Why a boot request of an armed host was refused (docs/security.md). */
export const BOOT_REFUSALS = ['no-token', 'bad-token', 'other-stage', 'other-address'] as const;
export type BootRefusal = (typeof BOOT_REFUSALS)[number];
export type BootRefusalCounts = Record<BootRefusal, number>;

export function newRefusalCounts(): BootRefusalCounts {
  return { 'no-token': 0, 'bad-token': 0, 'other-stage': 0, 'other-address': 0 };
}

const REASONS: Record<BootRefusal, string> = {
  'no-token': 'without the boot token of its arming',
  'bad-token': 'with a boot token that is not the one of its arming',
  'other-stage': 'for a boot stage it is not armed for',
  'other-address': 'from an address that is not its lease',
};

/** The peer's IPv4 address as the socket saw it (IPv4-mapped IPv6 unwrapped); undefined in-process. */
export function socketAddress(incoming: IncomingMessage | undefined): string | undefined {
  return incoming?.socket.remoteAddress?.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, '');
}

/** The same for a request through Hono (@hono/node-server hands the IncomingMessage as `env`). */
export function remoteAddress(c: Context): string | undefined {
  return socketAddress((c.env as { incoming?: IncomingMessage } | undefined)?.incoming);
}

/** What the guard needs of a request, whichever server parsed it (Hono or the direct routes). */
export interface BootRequest {
  /** The peer's address; undefined in-process. */
  remote: string | undefined;
  /** The raw URL path (not percent-decoded). */
  path: string;
}

/** A Hono request as the guard sees it. */
export function bootRequestOf(c: Context): BootRequest {
  return { remote: remoteAddress(c), path: new URL(c.req.url).pathname };
}

/** Constant time: a timing difference must not tell an attacker how much of a guess was right. */
export function tokenMatches(entry: ArmEntry, token: string | undefined): boolean {
  // An entry armed before tokens existed has none (netboot.json is read as it is): nothing matches it.
  if (!token || typeof entry.token !== 'string') return false;
  const want = Buffer.from(entry.token);
  const got = Buffer.from(token);
  return want.length === got.length && timingSafeEqual(want, got);
}

export interface BootCheck {
  /** The token in the request; null where the URL carries none by design (the per-host iPXE script). */
  token: string | undefined | null;
  /** The stage in the request's path, where it has one. */
  stage?: number;
}

/**
 * Why this request may not act for the armed host, or undefined. The source address is checked only
 * where the agent knows the host's address (its own DHCP leases, server mode): behind proxy DHCP the
 * lease is another server's.
 */
export function refusalOf(
  deps: AssetAppDeps,
  req: BootRequest,
  entry: ArmEntry,
  check: BootCheck,
): BootRefusal | undefined {
  if (check.token !== null) {
    if (!check.token) return 'no-token';
    if (!tokenMatches(entry, check.token)) return 'bad-token';
  }
  if (check.stage !== undefined && check.stage !== entry.stage) return 'other-stage';
  const lease = deps.leaseAddress?.(entry.mac);
  const from = req.remote;
  if (lease && from && from !== lease) return 'other-address';
  return undefined;
}

/** Logs and counts a refused request; it emits no boot event, so no workflow hears of it. */
export function noteRefusal(
  deps: AssetAppDeps,
  req: BootRequest,
  entry: Pick<ArmEntry, 'mac' | 'host'>,
  reason: BootRefusal,
  what: string,
): string {
  if (deps.refusals) deps.refusals[reason]++;
  const msg = `${what} of ${entry.host} (${entry.mac}) refused: ${REASONS[reason]}`;
  deps.log({
    level: 'warn',
    msg,
    mac: entry.mac,
    host: entry.host,
    reason,
    from: req.remote,
    lease: deps.leaseAddress?.(entry.mac),
    path: loggedPath(req.path),
  });
  return msg;
}

/** A refused boot request: logged and counted where it is thrown, answered with a bare 403. */
export class BootRefused extends HTTPException {
  constructor(message: string) {
    super(403, { message });
  }
}

/** Throws BootRefused (after logging and counting) unless the request may act for the armed host. */
export function guardBootRequest(
  deps: AssetAppDeps,
  req: BootRequest,
  entry: ArmEntry,
  check: BootCheck,
  what: string,
): void {
  const reason = refusalOf(deps, req, entry, check);
  if (reason) throw new BootRefused(noteRefusal(deps, req, entry, reason, what));
}

/** The path as logs may show it: the boot token of an unattended or checkpoint URL left out. */
export function loggedPath(pathname: string): string {
  return pathname.replace(/^(\/(?:unattended|checkpoint)\/[^/]+\/[^/]+\/)[^/]+/, '$1…');
}
