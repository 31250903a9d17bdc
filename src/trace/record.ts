// Parses a batch from the native addon: records back to back, each the
// 64-byte header of ebpf/trace_abi.h (struct kvs_trace_rec) and its payload.
import { endianness } from 'node:os';
import type { Endpoint, SegmentRecord } from './source.ts';

export const RECORD_HEADER_BYTES = 64;
export const RECORD_VERSION = 1;

// Field offsets of struct kvs_trace_rec (native/src/consumer.cc asserts them).
const OFF = {
  ts: 0,
  seq: 8,
  ack: 12,
  payloadLen: 16,
  capLen: 20,
  sport: 22,
  dport: 24,
  family: 26,
  dir: 27,
  flags: 28,
  version: 29,
  saddr: 32,
  daddr: 48,
} as const;
const DIR_EGRESS = 1;
// The addon copies records as the kernel wrote them: host byte order.
const LE = endianness() === 'LE';

export class RecordFormatError extends Error {}

/** Parses every record in `batch`; throws RecordFormatError on a malformed one. */
export function parseBatch(batch: Uint8Array): SegmentRecord[] {
  const view = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
  const out: SegmentRecord[] = [];
  let at = 0;
  while (at < batch.byteLength) {
    const rec = parseRecord(batch, view, at);
    out.push(rec.record);
    at = rec.next;
  }
  return out;
}

/** Parses the record at `at`; returns it and the offset of the next one. */
export function parseRecord(
  batch: Uint8Array,
  view: DataView,
  at: number,
): { record: SegmentRecord; next: number } {
  if (at + RECORD_HEADER_BYTES > batch.byteLength) {
    throw new RecordFormatError(`truncated record header at ${at}`);
  }
  const version = view.getUint8(at + OFF.version);
  if (version !== RECORD_VERSION) {
    throw new RecordFormatError(`record version ${version} at ${at}, expected ${RECORD_VERSION}`);
  }
  const capLen = view.getUint16(at + OFF.capLen, LE);
  const next = at + RECORD_HEADER_BYTES + capLen;
  if (next > batch.byteLength) throw new RecordFormatError(`truncated payload at ${at}`);
  const family = view.getUint8(at + OFF.family);
  if (family !== 4 && family !== 6) throw new RecordFormatError(`address family ${family} at ${at}`);
  const payloadLength = view.getUint32(at + OFF.payloadLen, LE);
  const src: Endpoint = { addr: formatAddr(batch, at + OFF.saddr, family), port: view.getUint16(at + OFF.sport, LE) };
  const dst: Endpoint = { addr: formatAddr(batch, at + OFF.daddr, family), port: view.getUint16(at + OFF.dport, LE) };
  const record: SegmentRecord = {
    ts: view.getBigUint64(at + OFF.ts, LE),
    src,
    dst,
    seq: view.getUint32(at + OFF.seq, LE),
    flags: view.getUint8(at + OFF.flags),
    // A view, not a copy: the batch buffer stays alive as long as a record does.
    payload: batch.subarray(at + RECORD_HEADER_BYTES, next),
    ...(payloadLength !== capLen ? { payloadLength } : {}),
    direction: view.getUint8(at + OFF.dir) === DIR_EGRESS ? 'egress' : 'ingress',
  };
  return { record, next };
}

const v4Cache = new Map<number, string>();

function formatAddr(b: Uint8Array, at: number, family: number): string {
  if (family === 4) {
    const key = (((b[at] ?? 0) << 24) | ((b[at + 1] ?? 0) << 16) | ((b[at + 2] ?? 0) << 8) | (b[at + 3] ?? 0)) >>> 0;
    let s = v4Cache.get(key);
    if (s === undefined) {
      s = `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
      if (v4Cache.size < 4096) v4Cache.set(key, s);
    }
    return s;
  }
  return formatIPv6(b.subarray(at, at + 16));
}

/** RFC 5952 text form: lower case, longest run of two or more zero groups as "::". */
export function formatIPv6(a: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((a[i] ?? 0) << 8) | (a[i + 1] ?? 0));
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (gs: number[]) => gs.map((g) => g.toString(16)).join(':');
  if (bestAt < 0) return hex(groups);
  return `${hex(groups.slice(0, bestAt))}::${hex(groups.slice(bestAt + bestLen))}`;
}
