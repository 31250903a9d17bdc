// The store's in-memory view of what it has queued for disk, used to check each Ready against the
// Raft contract before anything is written.
import type { HardState, SnapshotMeta } from '../raft/types.ts';
import type { StageState } from './records.ts';

export interface Book {
  /** The log base: entries up to base.index are folded into the state machine. */
  base: SnapshotMeta;
  /** Index of the last log entry (base.index when the log is empty). */
  lastIndex: number;
  /** Applied index including applies still in flight. */
  applied: number;
  /** The generation writes go to (reads switch once the install commits). */
  generation: 0 | 1;
  /** The incoming snapshot being staged in the other generation. */
  stage: StageState | undefined;
  hardState: HardState;
}

export function sameSnapshot(a: SnapshotMeta, b: SnapshotMeta): boolean {
  return a.index === b.index && a.term === b.term;
}
