// A failed LMDB commit names its cause, and lmdb-js's promise holding that cause is always handled:
// lmdb-js rejects each write with "Commit failed (see commitError for details)" and rejects the
// promise `commitError` with the cause (ENOSPC on a full disk, seen in a chaos run), which unwatched
// was an unhandled rejection ending the whole host process.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StorageError, withCommitCause } from '../../src/storage/errors.ts';

function lmdbCommitFailure(cause: Error): Error {
  let reject!: (e: unknown) => void;
  const commitError = new Promise((_, r) => (reject = r));
  const e = Object.assign(new Error('Commit failed (see commitError for details)'), { commitError });
  setImmediate(() => reject(cause)); // lmdb-js rejects it after the writes' own rejections
  return e;
}

test('a failed commit is reported with its cause, and its cause promise is handled', async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (r: unknown): void => void unhandled.push(r);
  process.on('unhandledRejection', onUnhandled);
  try {
    const enospc = Object.assign(new Error('MDB_MAP_FULL or ENOSPC: No space left on device'), { code: 'ENOSPC' });
    const e = await withCommitCause(lmdbCommitFailure(enospc));
    assert.ok(e instanceof StorageError);
    assert.match((e as Error).message, /^the LMDB commit failed: .*No space left on device/);
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(unhandled, []);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});

test('any other error passes through unchanged', async () => {
  const plain = new Error('x');
  assert.equal(await withCommitCause(plain), plain);
  assert.equal(await withCommitCause(undefined), undefined);
});
