// The write-ahead log's record format, shared by the file log (wal.ts) and its memory twin:
//   record := word u32 ‖ crc32(word ‖ seq ‖ synced ‖ payload) u32 ‖ seq u64 ‖ synced u64 ‖ payload
//   word   := 1 ‖ seal (1 bit) ‖ payloadLen (30 bits)
// `synced` is the last record the log knew durable when this one was written: a record damaged at
// or below it was synced, so its damage is corruption, never a torn write. A seal (no payload; seq
// is the next segment's first record) ends a closed segment and says its successor exists.
// Records written before 2026-12-07 (`payloadLen u32 ‖ crc32(seq ‖ payload) u32 ‖ seq u64 ‖
// payload`, the top bit of the length clear) are still read; they say nothing about syncs.
// Sequence numbers are contiguous across the whole log, so a reader can tell the live end of the
// log from bytes an earlier life left behind: the first record that fails its checksum or breaks
// the sequence ends it.
import { readU32, readU64, writeU32, writeU64 } from './bytes.ts';
import { crc32 } from './crc32.ts';

export const RECORD_HEADER_BYTES = 24;
/** The header of a record written before the `synced` field (still read). */
export const LEGACY_HEADER_BYTES = 16;
/** A payload larger than this is damage, not a record (a Ready is capped far below it). */
export const MAX_PAYLOAD_BYTES = 256 * 1024 * 1024;
const CURRENT = 0x8000_0000;
const SEAL = 0x4000_0000;
const LENGTH = 0x3fff_ffff;

export interface WalRecord {
  seq: number;
  payload: Uint8Array;
}

export function recordBytes(payloadLength: number): number {
  return RECORD_HEADER_BYTES + payloadLength;
}

/**
 * Writes one record at `offset` of `out` (which must have room for it); returns the offset after
 * it. `synced`: every record through this one was durable when this one was written.
 */
export function encodeRecord(out: Uint8Array, offset: number, seq: number, payload: Uint8Array, synced: number): number {
  out.set(payload, offset + RECORD_HEADER_BYTES);
  return encodeHeader(out, offset, CURRENT | payload.length, seq, synced, payload.length);
}

/** Writes the seal of a closed segment whose successor starts at record `nextSeq`; returns the offset after it. */
export function encodeSeal(out: Uint8Array, offset: number, nextSeq: number): number {
  return encodeHeader(out, offset, CURRENT | SEAL, nextSeq, nextSeq - 1, 0);
}

function encodeHeader(out: Uint8Array, offset: number, word: number, seq: number, synced: number, length: number): number {
  writeU32(out, offset, word >>> 0);
  writeU64(out, offset + 8, seq);
  writeU64(out, offset + 16, synced);
  const end = offset + RECORD_HEADER_BYTES + length;
  writeU32(out, offset + 4, crc32(out, crc32(out, crc32(out, 0, offset, offset + 4), offset + 8, offset + 24), offset + 24, end));
  return end;
}

export type DecodeResult =
  /** `synced` is undefined for a record of the earlier format. */
  | { kind: 'record'; record: WalRecord; synced: number | undefined; next: number }
  /** The end of a closed segment: the log continues at record `nextSeq` in the next one. */
  | { kind: 'seal'; nextSeq: number; next: number }
  /** No complete, intact record starts here: the log ends (or is damaged) at this offset. */
  | { kind: 'end'; reason: string };

/** Reads the record at `offset` of `bytes[0, end)`; the payload is a view into `bytes`. */
export function decodeRecord(bytes: Uint8Array, offset: number, end = bytes.length): DecodeResult {
  if (offset + LEGACY_HEADER_BYTES > end) return { kind: 'end', reason: offset === end ? 'end of file' : 'a partial record header' };
  const word = readU32(bytes, offset);
  if ((word & CURRENT) === 0) return decodeLegacy(bytes, offset, end, word);
  if (offset + RECORD_HEADER_BYTES > end) return { kind: 'end', reason: 'a partial record header' };
  const length = word & LENGTH;
  const seal = (word & SEAL) !== 0;
  if (length > MAX_PAYLOAD_BYTES || (seal && length !== 0)) return { kind: 'end', reason: `a record length of ${length} bytes` };
  const payloadStart = offset + RECORD_HEADER_BYTES;
  if (payloadStart + length > end) return { kind: 'end', reason: 'a partial record' };
  const crc = crc32(bytes, crc32(bytes, crc32(bytes, 0, offset, offset + 4), offset + 8, offset + 24), payloadStart, payloadStart + length);
  if (crc !== readU32(bytes, offset + 4)) return { kind: 'end', reason: 'a record failing its checksum' };
  const seq = readU64(bytes, offset + 8);
  if (seal) return { kind: 'seal', nextSeq: seq, next: payloadStart };
  const record = { seq, payload: bytes.subarray(payloadStart, payloadStart + length) };
  return { kind: 'record', record, synced: readU64(bytes, offset + 16), next: payloadStart + length };
}

function decodeLegacy(bytes: Uint8Array, offset: number, end: number, length: number): DecodeResult {
  if (length > MAX_PAYLOAD_BYTES) return { kind: 'end', reason: `a record length of ${length} bytes` };
  const payloadStart = offset + LEGACY_HEADER_BYTES;
  if (payloadStart + length > end) return { kind: 'end', reason: 'a partial record' };
  const crc = crc32(bytes, crc32(bytes, 0, offset + 8, offset + 16), payloadStart, payloadStart + length);
  if (crc !== readU32(bytes, offset + 4)) return { kind: 'end', reason: 'a record failing its checksum' };
  const record = { seq: readU64(bytes, offset + 8), payload: bytes.subarray(payloadStart, payloadStart + length) };
  return { kind: 'record', record, synced: undefined, next: payloadStart + length };
}

/** A record in the format written before 2026-12-07 (tests build old logs with it). */
export function encodeLegacyRecord(out: Uint8Array, offset: number, seq: number, payload: Uint8Array): number {
  writeU32(out, offset, payload.length);
  writeU64(out, offset + 8, seq);
  out.set(payload, offset + LEGACY_HEADER_BYTES);
  const end = offset + LEGACY_HEADER_BYTES + payload.length;
  writeU32(out, offset + 4, crc32(out, crc32(out, 0, offset + 8, offset + 16), offset + LEGACY_HEADER_BYTES, end));
  return end;
}
