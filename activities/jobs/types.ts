import type { z } from 'zod';
import type { SecretRef } from '../../schemas/common';
import type {
  CommandJobSchema,
  ContainerJobSchema,
  HttpJobSchema,
  Job,
  SshJobSchema,
  TcpJobSchema,
} from '../../schemas/jobs';

export type HttpJob = z.infer<typeof HttpJobSchema>;
export type SshJob = z.infer<typeof SshJobSchema>;
export type CommandJob = z.infer<typeof CommandJobSchema>;
export type TcpJob = z.infer<typeof TcpJobSchema>;
export type ContainerJob = z.infer<typeof ContainerJobSchema>;

/** The host a job runs for; `env` is exported to command jobs beside VAQUERO_HOST, _SITE, _IPV4, _MAC. */
export interface JobTarget {
  host: string;
  site: string;
  ipv4: string;
  mac: string;
  env: Record<string, string>;
}

export interface JobResult {
  name: string;
  type: Job['type'];
  ok: boolean;
  attempts: number;
  durationMs: number;
  /** The last attempt's output, at most 4 KiB (longer output keeps its ends around a marker). */
  output: string;
  error?: string;
}

export interface JobRunnerDeps {
  resolveSecret(ref: SecretRef): Promise<string>;
  /** Called before each attempt and every `heartbeatIntervalMs` while one runs (Temporal's heartbeat). */
  heartbeat?(details: unknown): void;
  heartbeatIntervalMs?: number;
  /** Cancels the job: the running attempt is stopped and the result says "cancelled". */
  signal?: AbortSignal;
  now?(): number;
  sleep?(ms: number, signal?: AbortSignal): Promise<void>;
  /**
   * known_hosts for SSH jobs (new keys are accepted, changed keys refused). Without it each attempt
   * trusts the key it is shown: a reprovisioned host has a new host key by design.
   */
  knownHostsFile?: string;
}

/** The outcome of one attempt. `retryable: false` stops the retries (a fault another try cannot fix). */
export interface AttemptResult {
  ok: boolean;
  output: string;
  error?: string;
  retryable?: boolean;
}

export type JobRunner<J extends Job> = (
  job: J,
  target: JobTarget,
  deps: JobRunnerDeps,
  attemptSignal: AbortSignal,
) => Promise<AttemptResult>;
