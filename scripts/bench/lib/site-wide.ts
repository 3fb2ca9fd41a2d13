// The agent's site-wide boot state as the benchmarks put it in the path of our HTTP and TFTP servers
// (issue 13): the netboot table is the agent's NetbootTable (its netboot.json cache in a temp dir),
// filled by the agent's own watch (watchArms) from an in-process stand-in for the server's
// `GET /agent/v1/arms` long poll, and boot events go through the agent's SeenReporter, which
// reports armed MACs heard (the power-claim evidence) in batches, and for TFTP through the lease
// lookup that names the MAC of a client address (tftpEventMapper). Only the server's HTTP hop is
// left out: the long poll is off the request path, and `seen` reports are batched every 200 ms.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { tftpEventMapper } from '../../../agent/services';
import { SeenReporter, watchArms, type ArmsSource } from '../../../agent/state/arms-watch';
import { NetbootTable } from '../../../agent/state/netboot-table';
import type { HostLease } from '../../../agent/dhcp/leases';
import type { ArmEntry } from '../../../schemas/agent';
import type { BootEventSink } from '../../../schemas/rollout';

export interface SiteWideCounts {
  /** Armed MACs reported heard to the (stand-in) server. */
  seenReported: number;
  /** Long-poll answers the watch took. */
  watchAnswers: number;
}

export async function siteWideState(arms: ArmEntry[], inner: BootEventSink) {
  const dir = await mkdtemp(path.join(tmpdir(), 'vq-bench-arms-'));
  const counts: SiteWideCounts = { seenReported: 0, watchAnswers: 0 };
  let release: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => (release = resolve));
  const source: ArmsSource = {
    async arms(since, waitMs) {
      // Nothing moves during a run: the first answer carries the arms, later ones wait out the poll.
      if (since >= 1) await Promise.race([stopped, new Promise((r) => setTimeout(r, waitMs).unref())]);
      counts.watchAnswers++;
      return { revision: 1, arms };
    },
    seen(seen) {
      counts.seenReported += seen.length;
      return Promise.resolve();
    },
  };
  const table = new NetbootTable(path.join(dir, 'netboot.json'));
  const quiet = { info: () => undefined, warn: () => undefined };
  const watch = watchArms(source, table, quiet);
  await watch.ready;
  await table.list();
  const reporter = new SeenReporter(inner, source, (mac) => table.isArmedNow(mac), quiet);
  return {
    netboot: table,
    events: reporter as BootEventSink,
    /** TFTP's events as the agent maps them: the client address to the MAC of its lease. */
    tftpEvents: (leases: ReadonlyMap<string, Pick<HostLease, 'mac' | 'ipv4'>>) =>
      tftpEventMapper(() => leases as ReadonlyMap<string, HostLease>, reporter),
    counts,
    async stop() {
      // The watch stops first, then its pending poll is answered: no answer after the stop.
      const watching = watch.stop();
      release();
      await watching;
      reporter.close();
      await reporter.flush();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
