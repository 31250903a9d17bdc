// Removals from the log, in runs: whole runs are deleted, and a run straddling a cut is rewritten
// with the entries that stay. Reads see the committed log, which is the whole log: persist()
// allows one Ready in flight at a time. Both cuts of one Ready (compaction and the suffix that new
// entries replace) are made in one pass: each reads the committed log, so made one after the other
// they could each rewrite the same run, bringing back what the other dropped.
import { indexKey } from './bytes.ts';
import type { Env } from './env.ts';
import { encodeRuns } from './log-codec.ts';
import { runAt, runKeys, type Run } from './log-table.ts';

type Track = (p: Promise<unknown>) => void;

export interface LogCuts {
  /** Compaction: entries firstIndex..through go. */
  through?: number;
  /** Replaced suffix: entries from..lastIndex go (new entries are written after). */
  from?: number;
}

/** Deletes the entries the cuts name from the stored log firstIndex..lastIndex. */
export function dropEntries(env: Env, cuts: LogCuts, firstIndex: number, lastIndex: number, track: Track): void {
  const { through, from } = cuts;
  const touched = new Map<number, Run | undefined>();
  const mark = (first: number, run?: Run): void => {
    if (!touched.has(first) || run) touched.set(first, run ?? touched.get(first));
  };
  if (through !== undefined) {
    const straddling = runAt(env, through);
    if (straddling) mark(straddling.first, straddling);
    for (const first of runKeys(env, firstIndex, through + 1)) mark(first);
  }
  if (from !== undefined) {
    const straddling = runAt(env, from);
    if (straddling) mark(straddling.first, straddling);
    for (const first of runKeys(env, from, lastIndex + 1)) mark(first);
  }
  const stays = (i: number): boolean => (through === undefined || i > through) && (from === undefined || i < from);
  for (const [first, straddling] of touched) {
    track(env.log.remove(indexKey(first)));
    // Only a straddling run keeps entries (the others lie wholly inside a cut); they go under the
    // key of the first one left.
    const kept = straddling?.entries.filter((e) => stays(e.index)) ?? [];
    if (kept.length > 0) encodeRuns(kept, (key, r) => track(env.log.put(key, r)));
  }
}
