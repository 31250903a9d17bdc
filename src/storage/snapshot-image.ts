// The byte format of snapshot chunks: a run of records, then a CRC-32 of the chunk.
//   record := table u8 ‖ keyLen u32 ‖ key ‖ valueLen u32 ‖ stored value (sealed, see sealed.ts)
// Values travel sealed as stored, so the receiver verifies each one before staging it.
import { crc32 } from './crc32.ts';
import { readU32, writeU32 } from './bytes.ts';

/** Tables in the order a snapshot streams them. */
export const TABLES = ['meta', 'sessions', 'kv'] as const;
export type Table = (typeof TABLES)[number];

export interface ImageRecord {
  table: number;
  key: Uint8Array;
  stored: Uint8Array;
}

export const RECORD_OVERHEAD = 9;
export const CHUNK_TRAILER = 4;

export function recordSize(key: Uint8Array, stored: Uint8Array): number {
  return RECORD_OVERHEAD + key.length + stored.length;
}

/** Builds a chunk from records whose total size is known in advance (one allocation). */
export function encodeChunk(records: readonly ImageRecord[]): Buffer {
  let size = CHUNK_TRAILER;
  for (const r of records) size += recordSize(r.key, r.stored);
  const out = Buffer.allocUnsafe(size);
  let off = 0;
  for (const r of records) {
    out[off] = r.table;
    writeU32(out, off + 1, r.key.length);
    out.set(r.key, off + 5);
    off += 5 + r.key.length;
    writeU32(out, off, r.stored.length);
    out.set(r.stored, off + 4);
    off += 4 + r.stored.length;
  }
  writeU32(out, off, crc32(out, 0, 0, off));
  return out;
}

/** Decodes a chunk; throws on a bad checksum or a malformed record. */
export function decodeChunk(data: Uint8Array): ImageRecord[] {
  const end = data.length - CHUNK_TRAILER;
  if (end < 0 || crc32(data, 0, 0, end) !== readU32(data, end)) throw new Error('snapshot chunk fails its checksum');
  const records: ImageRecord[] = [];
  let off = 0;
  while (off < end) {
    if (off + 5 > end) throw new Error('snapshot chunk: truncated record header');
    const table = data[off]!;
    const keyLen = readU32(data, off + 1);
    off += 5;
    if (table >= TABLES.length || off + keyLen + 4 > end) throw new Error('snapshot chunk: malformed record');
    const key = data.subarray(off, off + keyLen);
    off += keyLen;
    const valueLen = readU32(data, off);
    off += 4;
    if (off + valueLen > end) throw new Error('snapshot chunk: truncated value');
    records.push({ table, key, stored: data.subarray(off, off + valueLen) });
    off += valueLen;
  }
  return records;
}
