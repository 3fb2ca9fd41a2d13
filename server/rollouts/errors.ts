/**
 * A rollout that cannot be reached or answered something unexpected, in one line an operator can
 * act on. The CLI prints it with its exit code; the HTTP API answers it with a 502.
 */
export class RolloutClientError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'RolloutClientError';
  }
}
