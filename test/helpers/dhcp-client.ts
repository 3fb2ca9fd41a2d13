// busybox udhcpc as a test's DHCP client, run in a network namespace until it is bound (or gives up).
import { existsSync } from 'node:fs';
import { chmod, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Namespaces } from '../../cli/lab/netns';

export const BUSYBOX = ['/usr/bin/busybox', '/bin/busybox'].find((p) => existsSync(p));

/** The client's MAC: the link goes down for the change and up again. */
export async function setMac(net: Pick<Namespaces, 'exec'>, ns: string, link: string, mac: string) {
  await net.exec(ns, 'ip', ['link', 'set', link, 'down']);
  await net.exec(ns, 'ip', ['link', 'set', link, 'address', mac]);
  await net.exec(ns, 'ip', ['link', 'set', link, 'up']);
}

export interface UdhcpcOptions {
  /** DISCOVERs sent before it gives up (-t; default 5). */
  tries?: number;
  /** Seconds between them (-T; udhcpc's default 3 when unset). */
  timeoutS?: number;
  /** More udhcpc arguments (`-V PXEClient`, `-x 0x5d:0000`, ...). */
  args?: string[];
}

/**
 * Runs `udhcpc -n -q -f` on `link` in namespace `ns`, its script in `dir`, and returns the variables
 * the script saw on `bound` (ip, subnet, router, dns, domain, hostname, serverid, ...). It configures
 * nothing. Rejects when udhcpc gets no lease.
 */
export async function udhcpc(
  net: Pick<Namespaces, 'exec'>,
  ns: string,
  link: string,
  dir: string,
  { tries = 5, timeoutS, args = [] }: UdhcpcOptions = {},
): Promise<Map<string, string>> {
  const script = path.join(dir, 'udhcpc.sh');
  const out = path.join(dir, 'udhcpc.env');
  await rm(out, { force: true });
  await writeFile(script, `#!/bin/sh\n[ "$1" = bound ] && env > ${out}\nexit 0\n`);
  await chmod(script, 0o755);
  const timeout = timeoutS === undefined ? [] : ['-T', String(timeoutS)];
  await net.exec(ns, BUSYBOX ?? 'busybox', [
    ...['udhcpc', '-n', '-q', '-f', '-t', String(tries), ...timeout, ...args, '-i', link, '-s', script],
  ]);
  const lines = (await readFile(out, 'utf8')).split('\n').filter((line) => line.includes('='));
  return new Map(lines.map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
}
