// What the write-ahead log holds of one Ready: its new entries and hard state, the part a crash
// must not lose before LMDB has it durably (snapshots, compaction and truncation are written to
// LMDB directly and waited for). The entries are encoded as the log table's runs (log-codec.ts),
// so one encoding serves both the log record and LMDB:
//   payload := flags u8 (1: hard state) ‖ [term u64 ‖ vote u64 ‖ commit u64] ‖ (first index u64 ‖ run length u32 ‖ run)*
import type { Entry, HardState } from '../raft/types.ts';
import { readU32, readU64, writeU32, writeU64 } from './bytes.ts';
import { decodeRun, encodeRuns } from './log-codec.ts';

export interface ReadyRecord {
  entries: Entry[];
  hardState: HardState | undefined;
}

/** One run of entries as LMDB's log table stores it: key (first index) and value. */
export interface Run {
  key: Buffer;
  run: Uint8Array;
}

/** Encodes the entries into runs once: the caller writes the same runs to LMDB. */
export function runsOf(entries: readonly Entry[]): Run[] {
  const runs: Run[] = [];
  encodeRuns(entries, (key, run) => runs.push({ key: Buffer.from(key), run }));
  return runs;
}

export function encodeReadyRecord(runs: readonly Run[], hardState: HardState | undefined): Buffer {
  let size = 1 + (hardState ? 24 : 0);
  for (const r of runs) size += 12 + r.run.length;
  const out = Buffer.allocUnsafe(size);
  out[0] = hardState ? 1 : 0;
  let off = 1;
  if (hardState) {
    writeU64(out, 1, hardState.term);
    writeU64(out, 9, hardState.vote);
    writeU64(out, 17, hardState.commit);
    off = 25;
  }
  for (const r of runs) {
    out.set(r.key, off);
    writeU32(out, off + 8, r.run.length);
    out.set(r.run, off + 12);
    off += 12 + r.run.length;
  }
  return out;
}

/** Decodes a record's payload; throws on anything malformed (the log's checksum passed, so it is a bug or damage). */
export function decodeReadyRecord(payload: Uint8Array): ReadyRecord {
  if (payload.length < 1 || payload[0]! > 1) throw new Error('not a Ready record');
  let off = 1;
  let hardState: HardState | undefined;
  if (payload[0] === 1) {
    if (payload.length < 25) throw new Error('a Ready record cut short in its hard state');
    hardState = { term: readU64(payload, 1), vote: readU64(payload, 9), commit: readU64(payload, 17) };
    off = 25;
  }
  const entries: Entry[] = [];
  while (off < payload.length) {
    if (off + 12 > payload.length) throw new Error('a Ready record cut short in a run header');
    const length = readU32(payload, off + 8);
    const end = off + 12 + length;
    if (end > payload.length) throw new Error('a Ready record cut short in a run');
    const decoded = decodeRun(payload.subarray(off, off + 8), payload.subarray(off + 12, end));
    if (decoded.bad) throw new Error(`a Ready record's run: ${decoded.bad.detail} at index ${decoded.bad.index}`);
    const first = decoded.entries[0];
    if (first && entries.length > 0 && first.index !== entries.at(-1)!.index + 1) throw new Error('a Ready record whose runs are not contiguous');
    entries.push(...decoded.entries);
    off = end;
  }
  return { entries, hardState };
}
