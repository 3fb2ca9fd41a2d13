import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Bmc } from '../schemas/host';
import type { Job } from '../schemas/jobs';
import type { JobOutcome } from '../schemas/rollout';
import type { NetbootTable } from './netboot-table';
import type { PowerLedger } from './power/power-ledger';
import type { PowerDriver, PowerState, PowerTarget } from './power/power-driver';

export interface JobsRunner {
  run(
    jobs: Job[],
    target: { site: string; host: string; ipv4: string; mac: string },
    signal: AbortSignal,
  ): Promise<JobOutcome[]>;
}

export interface AgentActivityDeps {
  site: string;
  netboot: NetbootTable;
  ledger: PowerLedger;
  /** A driver for the host's BMC; throws for a BMC type this agent cannot drive. */
  powerDriver(target: PowerTarget, bmc: Bmc): PowerDriver;
  jobs: JobsRunner;
}

export interface PowerCycleInput extends PowerTarget {
  bmc: Bmc | undefined;
  /** One key per workflow run and boot stage: a retried activity with the same key never cycles again. */
  key: string;
}

export interface PowerCycleResult {
  before: PowerState;
  cycled: boolean;
  note?: string;
}

/** Datacenter work, run by the site's agent on `vaquero-agent-<site>`. */
export function createAgentActivities(deps: AgentActivityDeps) {
  return {
    async armNetboot(input: {
      mac: string;
      host: string;
      commit: string;
      stage: number;
      workflowId: string;
    }): Promise<void> {
      await deps.netboot.arm({ ...input, site: deps.site, armedAt: new Date().toISOString() });
    },

    async disarmNetboot(input: { mac: string; workflowId: string }): Promise<boolean> {
      return deps.netboot.disarm(input.mac, input.workflowId);
    },

    async powerCycle(input: PowerCycleInput): Promise<PowerCycleResult> {
      if (!input.bmc) {
        throw ApplicationFailure.nonRetryable(
          `host ${input.host} has no BMC in the source of truth`,
          'NoBmc',
        );
      }
      const driver = deps.powerDriver(input, input.bmc);
      const before = await driver.powerState();
      if (!(await deps.ledger.claim(input.key))) {
        return { before, cycled: false, note: `already power-cycled for ${input.key}; not cycling twice` };
      }
      await driver.setNextBoot('pxe');
      if (before === 'off') await driver.powerOn();
      else await driver.powerCycle();
      return { before, cycled: true };
    },

    /** Runs jobs in order, heartbeating; a cancelled activity (abort) stops the job in progress. */
    async runJobs(input: { host: string; ipv4: string; mac: string; jobs: Job[] }): Promise<JobOutcome[]> {
      const ctx = Context.current();
      const beat = setInterval(() => ctx.heartbeat({ host: input.host }), 5_000);
      try {
        return await deps.jobs.run(input.jobs, { ...input, site: deps.site }, ctx.cancellationSignal);
      } finally {
        clearInterval(beat);
      }
    },
  };
}

export type AgentActivities = ReturnType<typeof createAgentActivities>;
