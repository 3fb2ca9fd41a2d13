/**
 * A job fault with a retryable marker. Runners throw it (or return a failed attempt); anything else
 * a runner throws is a programming error and escapes `runJob`.
 */
export class JobError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'JobError';
  }
}

/** A secret that cannot be resolved. Its message names the variable or file, never a value. */
export class SecretError extends JobError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, false, options);
    this.name = 'SecretError';
  }
}
