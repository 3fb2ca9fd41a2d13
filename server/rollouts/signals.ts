// The operator signals of a site rollout, by the name people type: `vaquero rollout <name>`, the
// HTTP API's POST .../<name> and `temporal workflow signal --name <name>` all mean the same call.
import type { WorkflowHandle } from '@temporalio/client';
import type { z } from 'zod';
import type { SIGNAL_BODIES } from '../../schemas/api';
import type { SIGNAL_NAMES } from '../../schemas/rollout';
import {
  abortSignal,
  approveSignal,
  pauseSignal,
  resumeSignal,
  retryHostSignal,
} from '../../workflows/messages';

export type RolloutSignalName = (typeof SIGNAL_NAMES)[number];

/** What each signal carries: abort an optional reason, retry-host the host; the others nothing. */
export type RolloutSignalInputs = { [N in RolloutSignalName]: z.infer<(typeof SIGNAL_BODIES)[N]> };

const senders: {
  [N in RolloutSignalName]: (handle: WorkflowHandle, input: RolloutSignalInputs[N]) => Promise<void>;
} = {
  pause: (handle) => handle.signal(pauseSignal),
  resume: (handle) => handle.signal(resumeSignal),
  approve: (handle) => handle.signal(approveSignal),
  abort: (handle, { reason }) =>
    reason === undefined ? handle.signal(abortSignal) : handle.signal(abortSignal, reason),
  'retry-host': (handle, { host }) => handle.signal(retryHostSignal, host),
};

export function sendRolloutSignal<N extends RolloutSignalName>(
  handle: WorkflowHandle,
  name: N,
  input: RolloutSignalInputs[N],
): Promise<void> {
  return senders[name](handle, input);
}
