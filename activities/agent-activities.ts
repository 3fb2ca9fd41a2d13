import { randomBytes } from 'node:crypto';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Bmc } from '../schemas/host';
import type { Job } from '../schemas/jobs';
import type { JobOutcome } from '../schemas/rollout';
import type { ArmEntry } from '../schemas/agent';
import { PowerError, PowerUnsupportedError, toApplicationFailure } from './power/errors';
import { powerOffGracefully } from './power/power-off';
import type { PowerDriver, PowerState, PowerTarget } from './power/power-driver';

export interface JobsRunner {
  run(
    jobs: Job[],
    target: { site: string; host: string; ipv4: string; mac: string },
    signal: AbortSignal,
  ): Promise<JobOutcome[]>;
}

/** A boot token's length: 192 random bits, 32 URL-safe characters. */
const BOOT_TOKEN_BYTES = 24;

/** Which hosts boot from the network (agent/state/netboot-table.ts). */
export interface NetbootArming {
  arm(entry: ArmEntry): Promise<void>;
  lookup(mac: string): Promise<ArmEntry | undefined>;
  /** With a workflow id, only if that workflow armed it (a newer arm is left alone). */
  disarm(mac: string, workflowId?: string): Promise<boolean>;
}

/**
 * Where a power cycle of one key stands: never begun, begun but unconfirmed (a crash), or done. A
 * shared ledger (agent/feed/site-boot-client.ts) also says when any agent of the site heard the host
 * since the begin (`seen`).
 */
export type LedgerState =
  { state: 'new' } | { state: 'in-doubt'; since: string; seen?: string } | { state: 'done' };

/** Power cycles begun and done, durable across worker crashes (agent/state/power-ledger.ts). */
export interface PowerLedger {
  state(key: string): Promise<LedgerState>;
  /** `mac`: whose boot traffic settles this key if it is left in doubt. */
  begin(key: string, at: string, mac?: string): Promise<void>;
  done(key: string): Promise<void>;
}

/** When each MAC was last heard on the boot network (agent/state/boot-traffic.ts). */
export interface BootTrafficLog {
  /** Whether the MAC sent anything at or after `since` (an ISO time). */
  seenSince(mac: string, since: string): boolean;
}

export interface AgentActivityDeps {
  site: string;
  netboot: NetbootArming;
  ledger: PowerLedger;
  traffic: BootTrafficLog;
  /** How long a retried power cycle left in doubt waits for boot traffic before cycling again. */
  inDoubtGraceMs: number;
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

/**
 * Asks for a one-time network boot. A driver that cannot (the SSH soft path reboots the running OS)
 * leaves the host to boot what it would boot anyway, which the note in the result says.
 */
async function setNextBootPxe(driver: PowerDriver): Promise<string | undefined> {
  try {
    await driver.setNextBoot('pxe');
    return undefined;
  } catch (err) {
    if (err instanceof PowerUnsupportedError) return `next boot device not set: ${err.message}`;
    throw err;
  }
}

/** Whether this agent, or (in a shared ledger) any agent of the site, heard the host since `since`. */
async function heardSince(
  deps: AgentActivityDeps,
  input: PowerCycleInput,
  since: string,
  signal: AbortSignal,
): Promise<boolean> {
  const deadline = Date.now() + deps.inDoubtGraceMs;
  while (!signal.aborted) {
    if (deps.traffic.seenSince(input.mac, since)) return true;
    const shared = await deps.ledger.state(input.key);
    if (shared.state === 'done' || (shared.state === 'in-doubt' && shared.seen !== undefined)) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return false;
}

/** Datacenter work, run by the site's agent on `vaquero-agent-<site>`. */
/** A BMC operation: the host's driver, heartbeats while the BMC works, PowerErrors as Temporal failures. */
async function withBmc<T>(
  deps: AgentActivityDeps,
  input: PowerTarget & { bmc: Bmc | undefined },
  fn: (driver: PowerDriver, ctx: Context) => Promise<T>,
): Promise<T> {
  if (!input.bmc) {
    throw ApplicationFailure.nonRetryable(`host ${input.host} has no BMC in the source of truth`, 'NoBmc');
  }
  const ctx = Context.current();
  const beat = setInterval(() => ctx.heartbeat({ host: input.host }), 2_000);
  try {
    return await fn(deps.powerDriver(input, input.bmc), ctx);
  } catch (err) {
    throw err instanceof PowerError ? toApplicationFailure(err) : err;
  } finally {
    clearInterval(beat);
  }
}

/** The power cycle of one key, unless the ledger or the boot traffic says it happened already. */
async function powerCycleOnce(
  deps: AgentActivityDeps,
  input: PowerCycleInput,
  driver: PowerDriver,
  ctx: Context,
): Promise<PowerCycleResult> {
  const before = await driver.powerState();
  const entry = await deps.ledger.state(input.key);
  if (entry.state === 'done') return { before, cycled: false, note: `already power-cycled for ${input.key}` };
  if (entry.state === 'in-doubt' && (await heardSince(deps, input, entry.since, ctx.cancellationSignal))) {
    await deps.ledger.done(input.key);
    return {
      before,
      cycled: false,
      note: `a crashed attempt cycled it: boot traffic seen since ${entry.since}`,
    };
  }
  await deps.ledger.begin(input.key, new Date().toISOString(), input.mac);
  const note = await setNextBootPxe(driver);
  if (before === 'off') await driver.powerOn();
  else await driver.powerCycle();
  await deps.ledger.done(input.key);
  return { before, cycled: true, note };
}

export interface ArmInput {
  mac: string;
  host: string;
  commit: string;
  stage: number;
  workflowId: string;
  /** See ArmEntry: the workflow takes batches, and the agent disarms at this stage's checkpoint. */
  batches?: boolean;
  disarmAtCheckpoint?: boolean;
}

/** What `armAndPowerCycle` did: both steps, for the host's history. */
export interface ArmAndPowerCycleResult extends PowerCycleResult {
  /** False when a retried attempt found its own arming in place (its token kept, see below). */
  armed: boolean;
}

/** Arms a MAC for a workflow's stage; made here, not in the workflow: the token must stay out of history. */
async function arm(deps: AgentActivityDeps, input: ArmInput): Promise<void> {
  const token = randomBytes(BOOT_TOKEN_BYTES).toString('base64url');
  await deps.netboot.arm({ ...input, site: deps.site, armedAt: new Date().toISOString(), token });
}

/**
 * Arming of a retried attempt: the arming of the same workflow and stage is kept, since a host that
 * the crashed attempt already cycled may be booting with its token. A failure says it was the arm.
 */
async function armOnce(deps: AgentActivityDeps, input: ArmInput): Promise<boolean> {
  try {
    const current = await deps.netboot.lookup(input.mac);
    if (
      Context.current().info.attempt > 1 &&
      current?.workflowId === input.workflowId &&
      current.stage === input.stage &&
      current.commit === input.commit
    )
      return false;
    await arm(deps, input);
    return true;
  } catch (err) {
    throw ApplicationFailure.create({
      type: 'ArmFailed',
      message: (err as Error).message,
      cause: err as Error,
    });
  }
}

export function createAgentActivities(deps: AgentActivityDeps) {
  return {
    armNetboot: (input: ArmInput): Promise<void> => arm(deps, input),

    /**
     * The arm and power-cycle steps in one activity: they always run together, and one activity is
     * three history events where two were six more (a workflow task between them).
     */
    armAndPowerCycle: (input: ArmInput & PowerCycleInput): Promise<ArmAndPowerCycleResult> =>
      withBmc(deps, input, async (driver, ctx) => {
        const armed = await armOnce(deps, input);
        return { armed, ...(await powerCycleOnce(deps, input, driver, ctx)) };
      }),

    async disarmNetboot(input: { mac: string; workflowId: string }): Promise<boolean> {
      return deps.netboot.disarm(input.mac, input.workflowId);
    },

    /**
     * Power-cycles a host once per key, even across worker crashes: a cycle begun by a crashed attempt
     * counts as done if the host has been heard on the boot network since; otherwise it is redone.
     */
    powerCycle: (input: PowerCycleInput): Promise<PowerCycleResult> =>
      withBmc(deps, input, (driver, ctx) => powerCycleOnce(deps, input, driver, ctx)),

    /** Soft off, then hard off after `softTimeoutMs` where `allowHard` (the policy) says so. */
    powerOff: (input: PowerTarget & { bmc: Bmc | undefined; softTimeoutMs: number; allowHard: boolean }) =>
      withBmc(deps, input, (driver) => powerOffGracefully(driver, input)),

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
