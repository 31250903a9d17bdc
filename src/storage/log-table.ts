// Reads of the `log` database (runs of entries, see log-codec.ts), verified as they are read.
import type { Entry } from '../raft/types.ts';
import { indexKey, readU64 } from './bytes.ts';
import type { Env } from './env.ts';
import { StorageCorruptionError } from './errors.ts';
import { decodeRun } from './log-codec.ts';

export interface Run {
  first: number;
  entries: Entry[];
}

function verified(env: Env, key: Buffer, value: Uint8Array): Run {
  const { entries, bad } = decodeRun(key, value);
  if (bad) throw new StorageCorruptionError(env.dataFile, bad.index, bad.detail);
  return { first: readU64(key, 0), entries };
}

/** The run holding `index`, if any (the run with the greatest first index <= index). */
export function runAt(env: Env, index: number): Run | undefined {
  for (const { key, value } of env.log.getRange({ start: indexKey(index), reverse: true, limit: 1 })) {
    const run = verified(env, key, value);
    return run.entries.some((e) => e.index === index) ? run : undefined;
  }
  return undefined;
}

/** All runs from the one starting at or after `from`, in order. */
export function* runsFrom(env: Env, from: number, to?: number): Generator<Run> {
  const range = env.log.getRange({ start: indexKey(from), ...(to === undefined ? {} : { end: indexKey(to) }) });
  for (const { key, value } of range) yield verified(env, key, value);
}

/** First indexes of the runs starting in [from, to). */
export function runKeys(env: Env, from: number, to: number): number[] {
  return [...env.log.getKeys({ start: indexKey(from), end: indexKey(to) })].map((k) => readU64(k, 0));
}
