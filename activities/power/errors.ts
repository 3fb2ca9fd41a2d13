import { ApplicationFailure } from '@temporalio/common';
import { JobError } from '../jobs/errors';

export type PowerErrorKind = 'unreachable' | 'auth' | 'timeout' | 'unsupported' | 'bmc-error';

/**
 * A power operation that failed, with what went wrong and whether another try could help. Messages
 * name the BMC, the user and the operation, never a password or key.
 */
export class PowerError extends Error {
  constructor(
    message: string,
    readonly kind: PowerErrorKind,
    readonly retryable: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'PowerError';
  }
}

/** Nothing answered at the BMC's address (no reply, refused, name not resolved): it may answer later. */
export class PowerUnreachableError extends PowerError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, 'unreachable', true, options);
    this.name = 'PowerUnreachableError';
  }
}

/**
 * The BMC refused the credentials, or they could not be resolved. The same credentials fail again, so
 * it is permanent unless the resolver itself failed for a passing reason.
 */
export class PowerAuthError extends PowerError {
  constructor(message: string, options?: ErrorOptions & { retryable?: boolean }) {
    super(message, 'auth', options?.retryable ?? false, options);
    this.name = 'PowerAuthError';
  }
}

/** The operation did not finish in its time; whether it took effect is not known. */
export class PowerTimeoutError extends PowerError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, 'timeout', true, options);
    this.name = 'PowerTimeoutError';
  }
}

/** The driver or the BMC cannot do this at all (power-on through SSH, a refused cipher suite, no tool). */
export class PowerUnsupportedError extends PowerError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, 'unsupported', false, options);
    this.name = 'PowerUnsupportedError';
  }
}

/** The BMC (or the operator's script) answered with an error. Busy BMCs are common: retryable unless told. */
export class PowerBmcError extends PowerError {
  constructor(message: string, retryable = true, options?: ErrorOptions) {
    super(message, 'bmc-error', retryable, options);
    this.name = 'PowerBmcError';
  }
}

/** The failure type a workflow sees (`PowerUnreachable`, `PowerBmcError`, ...), for its retry policy. */
export function powerFailureType(kind: PowerErrorKind): string {
  const pascal = kind
    .split('-')
    .map((word) => word.charAt(0).toUpperCase() + word.slice(1))
    .join('');
  return `Power${pascal}`;
}

/** The one conversion at the activity edge: a permanent fault becomes a non-retryable failure. */
export function toApplicationFailure(err: PowerError): ApplicationFailure {
  return ApplicationFailure.create({
    message: err.message,
    type: powerFailureType(err.kind),
    nonRetryable: !err.retryable,
  });
}

/**
 * The last lines of a tool's output, on one line, for an error message: enough to say why, short
 * enough for a workflow history.
 */
export function outputTail(output: string, maxChars = 300): string {
  const lines = output
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
  const tail = lines.slice(-3).join('; ');
  return tail.length > maxChars ? `...${tail.slice(-maxChars)}` : tail;
}

/**
 * A credential that could not be resolved, as an auth error. A resolver that does not say whether
 * another try could help (not a JobError) is taken as transient; its message is kept, as resolvers
 * must not put values in their messages.
 */
export function credentialError(where: string, field: string, err: unknown): PowerAuthError {
  const message = err instanceof Error ? err.message : String(err);
  const retryable = err instanceof JobError ? err.retryable : true;
  return new PowerAuthError(`${where}: ${field}: ${message}`, { retryable, cause: err });
}
