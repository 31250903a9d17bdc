// Replays a write-ahead log into LMDB: every logged Ready that LMDB does not hold yet, in order,
// in one durable transaction. A store's own log (replica-store.ts) and the log a process shares
// among its stores (shared-log.ts) both end up here before anything reads the Raft state.
import type { Ready } from '../raft/types.ts';
import type { Env } from './env.ts';
import { StorageCorruptionError } from './errors.ts';
import { runAt } from './log-table.ts';
import { putRaft, readRaft } from './raft-table.ts';
import { planReady, type Plan } from './ready-plan.ts';
import { decodeReadyRecord, type ReadyRecord } from './ready-record.ts';
import { writePlan } from './ready-write.ts';
import { RaftKey, decodeIndex, encodeIndex } from './records.ts';
import { recover } from './recover.ts';
import type { WalRecord } from './wal-codec.ts';

/**
 * Writes the records after the store's `wal-seq` into it and returns the last record it holds
 * then. Records must continue its `wal-seq` without a gap: a gap means lost Readies.
 */
export function replayLog(env: Env, records: readonly WalRecord[]): number {
  const held = readRaft(env, RaftKey.walSeq, decodeIndex) ?? 0;
  const todo = records.filter((r) => r.seq > held);
  const first = todo[0];
  if (!first) return held;
  if (first.seq !== held + 1) {
    throw new StorageCorruptionError(env.dataFile, undefined, `the write-ahead log continues at record ${first.seq}, but the store holds records only through ${held}`);
  }
  const termAt = (i: number): number | undefined => runAt(env, i)?.entries.find((e) => e.index === i)?.term;
  env.root.transactionSync(() => {
    let { book } = recover(env);
    for (const r of todo) {
      let plan: Plan;
      try {
        plan = planReady(replayed(decodeReadyRecord(r.payload)), book, termAt);
      } catch (e) {
        throw new StorageCorruptionError(env.dataFile, undefined, `write-ahead log record ${r.seq} does not follow the store: ${(e as Error).message}`);
      }
      void writePlan(env, plan);
      void putRaft(env, RaftKey.walSeq, encodeIndex(r.seq));
      book = plan.next;
    }
  });
  return todo.at(-1)!.seq;
}

/** A logged Ready's writes, as the Ready they came from. */
function replayed(r: ReadyRecord): Ready {
  return { softState: undefined, hardState: r.hardState, snapshotChunks: [], snapshot: undefined, compaction: undefined, entries: r.entries, messages: [], committedEntries: [], readStates: [], failedReads: [] };
}
