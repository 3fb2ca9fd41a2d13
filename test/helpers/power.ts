import assert from 'node:assert/strict';
import { PowerError } from '../../activities/power/errors';

/** The PowerError a driver call fails with; fails the test when the call succeeds or throws anything else. */
export async function powerFailure(promise: Promise<unknown>): Promise<PowerError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof PowerError, `not a PowerError: ${String(err)}`);
    return err;
  }
  assert.fail('the call succeeded');
}
