// Raft log records: key = index as 8 bytes big-endian (LMDB orders them numerically),
// value = term u64 ‖ type u8 ‖ data ‖ crc32(key ‖ everything before it).
import type { Entry, EntryType } from '../raft/types.ts';
import { readU64, writeU64 } from './bytes.ts';
import { SEAL_BYTES, sealInPlace, unseal } from './sealed.ts';

const HEADER_BYTES = 9;

/**
 * Encodes a batch into one allocation and hands each (key, value) to `put`. The key buffer is
 * reused between calls (lmdb-js copies keys when a write is queued); values are views into the
 * batch buffer and must stay untouched until the write commits, which nothing here does.
 */
export function encodeEntries(entries: readonly Entry[], put: (key: Buffer, value: Buffer) => void): number {
  let total = 0;
  for (const e of entries) total += HEADER_BYTES + e.data.length + SEAL_BYTES;
  const buf = Buffer.allocUnsafe(total);
  const key = Buffer.allocUnsafe(8);
  let off = 0;
  for (const e of entries) {
    const len = HEADER_BYTES + e.data.length + SEAL_BYTES;
    const value = buf.subarray(off, off + len);
    writeU64(value, 0, e.term);
    value[8] = e.type;
    value.set(e.data, HEADER_BYTES);
    writeU64(key, 0, e.index);
    sealInPlace(key, value);
    put(key, value);
    off += len;
  }
  return total;
}

/** Decodes a stored entry, or returns undefined when its checksum or shape is wrong. */
export function decodeEntry(key: Uint8Array, stored: Uint8Array): Entry | undefined {
  if (key.length !== 8) return undefined;
  const body = unseal(key, stored);
  if (!body || body.length < HEADER_BYTES) return undefined;
  const type = body[8]!;
  if (type !== 0 && type !== 1) return undefined;
  return { index: readU64(key, 0), term: readU64(body, 0), type: type as EntryType, data: body.subarray(HEADER_BYTES) };
}
