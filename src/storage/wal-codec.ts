// The write-ahead log's record format, shared by the file log (wal.ts) and its memory twin:
//   record := payloadLen u32 ‖ crc32(seq ‖ payload) u32 ‖ seq u64 ‖ payload
// Sequence numbers are contiguous across the whole log, so a reader can tell the live end of the
// log from bytes an earlier life left behind: the first record that fails its checksum or breaks
// the sequence ends it.
import { readU32, readU64, writeU32, writeU64 } from './bytes.ts';
import { crc32 } from './crc32.ts';

export const RECORD_HEADER_BYTES = 16;
/** A payload larger than this is damage, not a record (a Ready is capped far below it). */
export const MAX_PAYLOAD_BYTES = 256 * 1024 * 1024;

export interface WalRecord {
  seq: number;
  payload: Uint8Array;
}

export function recordBytes(payloadLength: number): number {
  return RECORD_HEADER_BYTES + payloadLength;
}

/** Writes one record at `offset` of `out` (which must have room for it); returns the offset after it. */
export function encodeRecord(out: Uint8Array, offset: number, seq: number, payload: Uint8Array): number {
  writeU32(out, offset, payload.length);
  writeU64(out, offset + 8, seq);
  out.set(payload, offset + RECORD_HEADER_BYTES);
  const crc = crc32(out, crc32(out, 0, offset + 8, offset + 16), offset + RECORD_HEADER_BYTES, offset + RECORD_HEADER_BYTES + payload.length);
  writeU32(out, offset + 4, crc);
  return offset + RECORD_HEADER_BYTES + payload.length;
}

export type DecodeResult =
  | { kind: 'record'; record: WalRecord; next: number }
  /** No complete, intact record starts here: the log ends (or is damaged) at this offset. */
  | { kind: 'end'; reason: string };

/** Reads the record at `offset` of `bytes[0, end)`; the payload is a view into `bytes`. */
export function decodeRecord(bytes: Uint8Array, offset: number, end = bytes.length): DecodeResult {
  if (offset + RECORD_HEADER_BYTES > end) return { kind: 'end', reason: offset === end ? 'end of file' : 'a partial record header' };
  const length = readU32(bytes, offset);
  if (length > MAX_PAYLOAD_BYTES) return { kind: 'end', reason: `a record length of ${length} bytes` };
  const payloadStart = offset + RECORD_HEADER_BYTES;
  if (payloadStart + length > end) return { kind: 'end', reason: 'a partial record' };
  const crc = crc32(bytes, crc32(bytes, 0, offset + 8, offset + 16), payloadStart, payloadStart + length);
  if (crc !== readU32(bytes, offset + 4)) return { kind: 'end', reason: 'a record failing its checksum' };
  const record = { seq: readU64(bytes, offset + 8), payload: bytes.subarray(payloadStart, payloadStart + length) };
  return { kind: 'record', record, next: payloadStart + length };
}
