// Errors become an HTTP status here, once, for the whole app, so handlers throw typed errors and no
// route builds its own error response.
import {
  isGrpcDeadlineError,
  isGrpcServiceError,
  ServiceError,
  WorkflowNotFoundError,
} from '@temporalio/client';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { RolloutClientError, RolloutRefusedError } from '../rollouts/errors';

export interface HttpError {
  status: ContentfulStatusCode;
  message: string;
  /** A server fault worth an error log line with its stack; the others are the client's. */
  internal: boolean;
}

export function httpError(err: unknown): HttpError {
  if (err instanceof HTTPException) return { status: err.status, message: err.message, internal: false };
  if (err instanceof WorkflowNotFoundError)
    return { status: 404, message: `no workflow ${err.workflowId}`, internal: false };
  const cause = (err as Error | undefined)?.cause;
  if (isGrpcDeadlineError(err) || isGrpcDeadlineError(cause))
    return { status: 504, message: 'Temporal did not answer in time', internal: true };
  if (err instanceof ServiceError || isGrpcServiceError(err))
    return { status: 503, message: 'Temporal is unavailable', internal: true };
  // From the rollout helpers shared with the CLI: a workflow that answered with something unexpected.
  if (err instanceof RolloutRefusedError) return { status: 409, message: err.message, internal: false };
  if (err instanceof RolloutClientError) return { status: 502, message: err.message, internal: true };
  return { status: 500, message: 'internal error', internal: true };
}
