// Raft log records. Consecutive entries are stored together as a *run*: one LMDB record whose key
// is the index of its first entry (8 bytes big-endian, so LMDB orders runs numerically) and whose
// value is the entries one after the other, each with its own checksum:
//   entry := term u64 ‖ type u8 ‖ dataLen u32 ‖ data ‖ crc32(index u64 ‖ term ‖ type ‖ dataLen ‖ data)
// One put per run instead of one per entry is what lets a large batch go faster than plain puts.
import type { Entry, EntryType } from '../raft/types.ts';
import { readU32, readU64, writeU32, writeU64 } from './bytes.ts';
import { crc32 } from './crc32.ts';

const HEADER_BYTES = 13;
const ENTRY_OVERHEAD = HEADER_BYTES + 4;

/** Runs close at this size (a single larger entry gets a run of its own). */
export const RUN_BYTES = 64 * 1024;

export function entryBytes(e: Entry): number {
  return ENTRY_OVERHEAD + e.data.length;
}

/**
 * Encodes contiguous entries into runs, one allocation for all, handing each run to `put` with
 * its key. The key buffer is reused between calls (lmdb-js copies keys when a write is queued);
 * runs are views into the allocation and must stay untouched until the write commits.
 */
export function encodeRuns(entries: readonly Entry[], put: (key: Buffer, run: Uint8Array) => void, runBytes = RUN_BYTES): void {
  let total = 0;
  for (const e of entries) total += ENTRY_OVERHEAD + e.data.length;
  const buf = Buffer.allocUnsafe(total);
  const key = Buffer.allocUnsafe(8);
  const index = Buffer.allocUnsafe(8);
  let runStart = 0;
  let off = 0;
  let first = entries[0]?.index ?? 0;
  const flush = (): void => {
    writeU64(key, 0, first);
    // A plain Uint8Array view: Buffer#subarray costs several times more.
    put(key, new Uint8Array(buf.buffer, buf.byteOffset + runStart, off - runStart));
  };
  for (const e of entries) {
    const size = ENTRY_OVERHEAD + e.data.length;
    if (off > runStart && off - runStart + size > runBytes) {
      flush();
      runStart = off;
      first = e.index;
    }
    writeU64(buf, off, e.term);
    buf[off + 8] = e.type;
    writeU32(buf, off + 9, e.data.length);
    buf.set(e.data, off + HEADER_BYTES);
    writeU64(index, 0, e.index);
    const end = off + HEADER_BYTES + e.data.length;
    writeU32(buf, end, crc32(buf, crc32(index), off, end));
    off = end + 4;
  }
  if (off > runStart) flush();
}

export type DecodedRun = { entries: Entry[]; bad: undefined } | { entries: Entry[]; bad: { index: number; detail: string } };

/**
 * Decodes and verifies a run. `entries` holds the good prefix; `bad` names the first entry that
 * is damaged (checksum, shape, or a run cut short), if any. Entry data are views into `run`.
 */
export function decodeRun(key: Uint8Array, run: Uint8Array): DecodedRun {
  const entries: Entry[] = [];
  if (key.length !== 8) return { entries, bad: { index: 0, detail: `a log key of ${key.length} bytes` } };
  let index = readU64(key, 0);
  const scratch = Buffer.allocUnsafe(8);
  let off = 0;
  if (run.length === 0) return { entries, bad: { index, detail: 'an empty run' } };
  while (off < run.length) {
    if (off + ENTRY_OVERHEAD > run.length) return { entries, bad: { index, detail: 'the entry is cut short' } };
    const len = readU32(run, off + 9);
    const end = off + HEADER_BYTES + len;
    if (end + 4 > run.length) return { entries, bad: { index, detail: 'the entry is cut short' } };
    writeU64(scratch, 0, index);
    if (crc32(run, crc32(scratch), off, end) !== readU32(run, end)) {
      return { entries, bad: { index, detail: 'the entry fails its checksum' } };
    }
    const type = run[off + 8]!;
    if (type !== 0 && type !== 1) return { entries, bad: { index, detail: `entry type ${type}` } };
    entries.push({ index, term: readU64(run, off), type: type as EntryType, data: run.subarray(off + HEADER_BYTES, end) });
    index++;
    off = end + 4;
  }
  return { entries, bad: undefined };
}
