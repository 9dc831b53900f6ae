// Assertions the Node client's tests share.
import assert from 'node:assert/strict';

import { SimulatorError } from '../src/index.js';

/** Asserts that `promise` rejects with a SimulatorError and returns it for further checks. */
export async function rejection(promise) {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof SimulatorError, `expected a SimulatorError, got ${err?.stack ?? err}`);
    return err;
  }
  assert.fail('expected the call to fail');
}
