// Rebuilds the Raft state from disk on start, checking every invariant the write path keeps.
// Anything off is reported as StorageCorruptionError naming the file and the log index.
import type { Entry, PersistedState } from '../raft/types.ts';
import type { Book } from './book.ts';
import { readU64 } from './bytes.ts';
import type { Env } from './env.ts';
import { StorageCorruptionError } from './errors.ts';
import { decodeRun } from './log-codec.ts';
import {
  RaftKey,
  decodeGeneration,
  decodeHardState,
  decodeIndex,
  decodeSnapshotMeta,
  decodeStage,
} from './records.ts';
import { readRaft, requireRaft } from './raft-table.ts';

export function recover(env: Env): { state: PersistedState; book: Book } {
  const hardState = requireRaft(env, RaftKey.hardState, decodeHardState);
  const base = requireRaft(env, RaftKey.base, decodeSnapshotMeta);
  const applied = requireRaft(env, RaftKey.applied, decodeIndex);
  const generation = requireRaft(env, RaftKey.generation, decodeGeneration);
  const stage = readRaft(env, RaftKey.stage, decodeStage);
  const entries = readLog(env, base.index, base.term);
  const lastIndex = entries.at(-1)?.index ?? base.index;

  const corrupt = (index: number, detail: string): StorageCorruptionError =>
    new StorageCorruptionError(env.dataFile, index, detail);
  if (applied < base.index) throw corrupt(applied, `the applied index is below the log base ${base.index}`);
  if (applied > lastIndex) {
    throw corrupt(applied, `the state machine is ahead of its log: applied index ${applied}, last log entry ${lastIndex}`);
  }
  if (hardState.commit > lastIndex) {
    throw corrupt(hardState.commit, `the hard state's commit index is beyond the last log entry ${lastIndex}`);
  }
  const lastTerm = entries.at(-1)?.term ?? base.term;
  if (lastTerm > hardState.term) throw corrupt(lastIndex, `entry term ${lastTerm} is above the hard state's term ${hardState.term}`);

  // Only committed entries are applied, so the applied index is a commit index too; the write of
  // the commit index may trail the apply when they go in different transactions.
  const hs = { ...hardState, commit: Math.max(hardState.commit, applied) };
  return {
    state: { hardState: hs, base, entries, applied },
    book: { base, lastIndex, applied, generation, stage, hardState: hs },
  };
}

/** Reads and verifies the whole log: contiguous from base + 1, every checksum right, terms ordered. */
function readLog(env: Env, baseIndex: number, baseTerm: number): Entry[] {
  const entries: Entry[] = [];
  let expected = baseIndex + 1;
  let prevTerm = baseTerm;
  const corrupt = (index: number, detail: string): StorageCorruptionError =>
    new StorageCorruptionError(env.dataFile, index, detail);
  try {
    for (const { key, value } of env.log.getRange()) {
      if (key.length !== 8) throw corrupt(expected, `a log key of ${key.length} bytes`);
      const first = readU64(key, 0);
      if (first < expected) throw corrupt(first, `an entry at or below ${expected - 1}, already read or folded into the base ${baseIndex}`);
      if (first > expected) throw corrupt(expected, `the entry is missing (the log jumps to ${first})`);
      const { entries: run, bad } = decodeRun(key, value);
      for (const e of run) {
        if (e.term < prevTerm) throw corrupt(e.index, `term ${e.term} after term ${prevTerm}`);
        entries.push(e);
        prevTerm = e.term;
      }
      if (bad) throw corrupt(bad.index, bad.detail);
      expected = first + run.length;
    }
  } catch (e) {
    if (e instanceof StorageCorruptionError) throw e;
    throw corrupt(expected, `LMDB cannot read the log (${(e as Error).message})`);
  }
  return entries;
}
