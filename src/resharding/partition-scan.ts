// The keys of some partitions, found by walking the store's keys in order (keys are stored under
// the user's key, not a partition prefix: docs/resharding.md). Only keys are read and hashed; a
// caller reads the values it wants. Yields to the event loop every SLICE keys, so a long walk
// never holds up the requests the replica is serving meanwhile.
import { setImmediate as nextTurn } from 'node:timers/promises';

export interface KeyScanner {
  scanKeys(start: Uint8Array, limit: number): { keys: Uint8Array[]; more: Uint8Array | null };
}

const PAGE = 1000;
const SLICE = 5000;

/**
 * Calls `take(key)` for each key of the `wanted` partitions from `from` on, in key order, until the
 * keys run out (returns null), `budget` keys were examined, or `take` returns false (it did not
 * take that key); then returns the key to resume from.
 */
export async function walkPartitionKeys(
  store: KeyScanner,
  from: Uint8Array,
  wanted: ReadonlySet<number>,
  partitionOf: (key: Uint8Array) => number,
  take: (key: Uint8Array) => boolean,
  budget = Infinity,
): Promise<Uint8Array | null> {
  let cursor: Uint8Array | null = from;
  let examined = 0;
  let sliceEnd = SLICE;
  while (cursor !== null) {
    if (examined >= budget) return cursor;
    if (examined >= sliceEnd) {
      sliceEnd = examined + SLICE;
      await nextTurn();
    }
    const page: { keys: Uint8Array[]; more: Uint8Array | null } = store.scanKeys(cursor, PAGE);
    for (const key of page.keys) {
      examined++;
      if (wanted.has(partitionOf(key)) && !take(key)) return key;
    }
    cursor = page.more;
  }
  return null;
}
