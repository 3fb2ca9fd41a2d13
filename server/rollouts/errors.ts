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

/** The rollout refused an operator's command (an Update's validator, or it is closed): 409, exit 1. */
export class RolloutRefusedError extends RolloutClientError {
  constructor(message: string) {
    super(message, 1);
    this.name = 'RolloutRefusedError';
  }
}
