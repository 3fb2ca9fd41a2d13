// CPU time of the processes a benchmark measures, read from /proc (Linux).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const ticksPerS = Number(execFileSync('getconf', ['CLK_TCK']).toString());

/** User + system CPU of a process so far, in ms (fields 14 and 15 of /proc/<pid>/stat). */
export function cpuMsOf(pid: number | string): number {
  const fields = (readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1] ?? '').split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerS;
}

/** The process listening on the Temporal frontend's port (dev server or temporal-server). */
export function temporalServerCpuMs(address: string): number | undefined {
  try {
    const port = address.split(':').pop();
    const line = execFileSync('ss', ['-ltnpH', `sport = :${port}`]).toString();
    const pid = /pid=(\d+)/.exec(line)?.[1];
    return pid ? cpuMsOf(pid) : undefined;
  } catch {
    return undefined;
  }
}

/** PostgreSQL's processes (pooled connections stay, so their CPU is still counted at the end). */
export function postgresCpuMs(): number {
  let pids: string[] = [];
  try {
    pids = execFileSync('pgrep', ['-x', 'postgres']).toString().split('\n').filter(Boolean);
  } catch {
    return 0;
  }
  return pids.reduce((sum, pid) => {
    try {
      return sum + cpuMsOf(pid);
    } catch {
      return sum;
    }
  }, 0);
}
