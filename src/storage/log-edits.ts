// Removals from the log, in runs: whole runs are deleted, and the run straddling the cut is
// rewritten with the entries that stay. Reads see the committed log, which is the whole log:
// persist() allows one Ready in flight at a time.
import { indexKey } from './bytes.ts';
import type { Env } from './env.ts';
import { encodeRuns } from './log-codec.ts';
import { runAt, runKeys } from './log-table.ts';

type Track = (p: Promise<unknown>) => void;

/** Deletes entries from..lastIndex (the new entries overwrite them). */
export function dropFrom(env: Env, from: number, lastIndex: number, track: Track): void {
  const straddling = runAt(env, from);
  for (const first of runKeys(env, from, lastIndex + 1)) track(env.log.remove(indexKey(first)));
  if (straddling && straddling.first < from) {
    encodeRuns(
      straddling.entries.filter((e) => e.index < from),
      (key, run) => track(env.log.put(key, run)),
    );
  }
}

/** Deletes entries firstIndex..upTo (compaction). */
export function dropThrough(env: Env, firstIndex: number, upTo: number, track: Track): void {
  const straddling = runAt(env, upTo);
  for (const first of runKeys(env, firstIndex, upTo + 1)) track(env.log.remove(indexKey(first)));
  const kept = straddling?.entries.filter((e) => e.index > upTo) ?? [];
  if (kept.length > 0) encodeRuns(kept, (key, run) => track(env.log.put(key, run)));
}
