// Regression (found by the container tests: a placement replica crashed at start): a read barrier
// begun after its request's deadline had passed was left unobserved, and its later NotLeaderError
// was an unhandled rejection, which stops a Node process.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DeadlineError, withDeadline } from '../../src/router/router.ts';

test('a promise past its deadline is still observed: its later rejection is handled', async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown): void => void unhandled.push(e);
  process.on('unhandledRejection', onUnhandled);
  try {
    let fail!: (e: Error) => void;
    const barrier = new Promise<void>((_, reject) => (fail = reject));
    await assert.rejects(withDeadline(barrier, Date.now() - 1), DeadlineError);
    fail(new Error('no leader to confirm the read'));
    await new Promise((r) => setTimeout(r, 50)); // unhandled rejections are reported after a turn
    assert.deepEqual(unhandled, []);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});

test('within the deadline the promise settles the call; after it, a DeadlineError does', async () => {
  assert.equal(await withDeadline(Promise.resolve(7), Date.now() + 1000), 7);
  await assert.rejects(withDeadline(new Promise(() => undefined), Date.now() + 20), DeadlineError);
  await assert.rejects(withDeadline(Promise.reject(new Error('boom')), Date.now() + 1000), /boom/);
});
