// The agent's own activities for tests that only arm and disarm hosts: its netboot table and power
// ledger in `dir`, no BMC (a power call throws), no jobs, boot traffic dropped.
import path from 'node:path';
import { createAgentActivities } from '../../activities/agent-activities';
import { BootTraffic } from '../../agent/state/boot-traffic';
import type { NetbootTable } from '../../agent/state/netboot-table';
import { PowerLedger } from '../../agent/state/power-ledger';

export function armingActivities(site: string, table: NetbootTable, dir: string) {
  return createAgentActivities({
    site,
    netboot: table,
    ledger: new PowerLedger(path.join(dir, 'power-ledger.log')),
    traffic: new BootTraffic({ emit: () => undefined }),
    inDoubtGraceMs: 0,
    powerDriver: () => {
      throw new Error('no BMC in this test');
    },
    jobs: { run: () => Promise.resolve([]) },
  });
}
