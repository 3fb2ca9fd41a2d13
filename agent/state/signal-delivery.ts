import { createHash } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { BootEvent, BootEventBatch } from '../../schemas/rollout';

// gRPC status codes: the workflow is gone, or the request can never succeed.
const NOT_FOUND = 5;
const INVALID_ARGUMENT = 3;

/** An event with its stage, its fields in one order: two agents must write the same JSON. */
export function canonical(event: BootEvent, stage: number | undefined): BootEvent {
  const { kind, mac, at, detail } = event;
  const s = event.stage ?? stage;
  return {
    kind,
    mac,
    ...(s !== undefined ? { stage: s } : {}),
    at,
    ...(detail !== undefined ? { detail } : {}),
  };
}

/**
 * The request id of a batch's signal, made from its workflow and content: the same batch re-sent
 * after a restart, or sent by the site's other agent, is recorded once by the server.
 */
export function batchRequestId(workflowId: string, batch: BootEventBatch): string {
  const hex = createHash('sha256')
    .update(`${workflowId}\n${JSON.stringify(batch)}`)
    .digest('hex');
  return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20, 32)].join(
    '-',
  );
}

export interface SignalCall {
  workflowId: string;
  name: string;
  requestId: string;
  arg: unknown;
  /** The event kinds it carries, for the logs. */
  kinds: string;
}

export interface SignalOptions {
  retryMs: number;
  logger: { warn(msg: string, fields?: object): void };
  /** Checked before each attempt: a closed sink leaves the rest owed in its journal. */
  closed: () => boolean;
}

/** Sends a signal until it is recorded or cannot be; false when `closed()` said so first. */
export async function sendSignal(client: Client, call: SignalCall, options: SignalOptions): Promise<boolean> {
  const { workflowId, name, requestId, arg, kinds } = call;
  const { logger } = options;
  for (let attempt = 1; ; attempt++) {
    if (options.closed()) return false;
    try {
      // The raw call, for its request id: a signal re-sent after a crash between delivery and
      // acknowledgement is recognised by the server and not added to the history again.
      await client.workflowService.signalWorkflowExecution({
        namespace: client.options.namespace,
        identity: client.options.identity,
        workflowExecution: { workflowId },
        signalName: name,
        requestId,
        input: { payloads: [defaultPayloadConverter.toPayload(arg)] },
      });
      return true;
    } catch (err) {
      const code = (err as { code?: number }).code;
      const message = (err as Error).message;
      if (code === NOT_FOUND || code === INVALID_ARGUMENT || /not found|already completed/i.test(message)) {
        logger.warn('boot event for a closed workflow dropped', { workflowId, kind: kinds, error: message });
        return true;
      }
      if (attempt === 1) logger.warn('boot event delivery failing, retrying', { error: message });
      await new Promise((resolve) => setTimeout(resolve, options.retryMs));
    }
  }
}
