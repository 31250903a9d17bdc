// Partition hand-off between shard groups (docs/protocol.md §Hand-off). The destination group's
// leader sends these to any replica of the source group over an ordinary client connection:
//   HANDOFF_FREEZE (0x10)  u64 epoch | u32 n | n × u32 partition             → OK or ERROR
//   HANDOFF_EXPORT (0x11)  u64 epoch | u32 n | n × u32 partition | opt16 cursor | u32 maxBytes
//                          [u8 mode [u64 copy | u32 round]]                 → EXPORT_CHUNK or ERROR
//   EXPORT_CHUNK   (0x90)  u32 items | (bytes16 key, bytes32 value)* | u32 sessions |
//                          (bytes16 clientId, bytes32 record)* | opt16 next cursor |
//                          [u32 removed | bytes16 key*]
// The bracketed tails are absent in the first version's frames and mean its behaviour: mode 0
// (frozen: every key of the frozen partitions) and nothing removed. Modes 1 (pre-copy: every key
// while the source still serves, changes tracked from then on) and 2 (delta: a round of the keys
// changed since the previous step, deleted ones listed as removed; the last round once frozen)
// copy most data before the partitions pause. The copy id (random, one per attempt of the
// destination's leader) and round number (0: the pre-copy, then 1, 2, …) scope the source's
// tracking to that attempt and make a resent round's first request replay that round.
// opt16 = bool present, then bytes16. Big-endian, strict, like every other body.
import { Reader } from './bytes.ts';
import { allocFrame, finishFrame } from './frame.ts';
import type { KeyValue } from './client-types.ts';

export const HandoffType = { Freeze: 0x10, Export: 0x11, ExportChunk: 0x90 } as const;

export interface FreezeRequest {
  epoch: number;
  partitions: number[];
}

export interface ExportRequest {
  epoch: number;
  partitions: number[];
  /** Where the previous chunk stopped (null: from the start). */
  cursor: Uint8Array | null;
  maxBytes: number;
  /** Absent: 'frozen'. */
  mode?: ExportMode;
  /** Pre-copy and delta: which attempt of the destination asks, and for which round. */
  copy?: CopyRound;
}

export interface CopyRound {
  /** One per attempt of the destination's leader to receive the partitions: its tracking is its own. */
  id: number;
  /** 0: the pre-copy; then 1, 2, … the delta rounds. */
  round: number;
}

export type ExportMode = 'frozen' | 'precopy' | 'delta';
const MODES: readonly ExportMode[] = ['frozen', 'precopy', 'delta'];

export interface SessionImage {
  clientId: Uint8Array;
  /** The session record as the source stores it (storage's encoding). */
  record: Uint8Array;
}

export interface ExportChunk {
  items: KeyValue[];
  /** Client sessions travel with the data (first chunk only), so retries stay exactly-once. */
  sessions: SessionImage[];
  next: Uint8Array | null;
  /** Delta chunks: keys deleted at the source since the previous step (absent: none). */
  removed?: Uint8Array[];
}

export function isHandoffRequest(type: number): boolean {
  return type === HandoffType.Freeze || type === HandoffType.Export;
}

export function encodeFreeze(requestId: number, r: FreezeRequest): Buffer {
  const w = allocFrame(HandoffType.Freeze, requestId, 8 + 4 + 4 * r.partitions.length);
  w.u64(r.epoch);
  w.u32(r.partitions.length);
  for (const p of r.partitions) w.u32(p);
  return finishFrame(w);
}

export function encodeExport(requestId: number, r: ExportRequest): Buffer {
  const mode = MODES.indexOf(r.mode ?? 'frozen');
  if (r.copy && mode === 0) throw new RangeError('a frozen export names no copy round');
  const w = allocFrame(HandoffType.Export, requestId, 8 + 4 + 4 * r.partitions.length + 1 + (r.cursor ? 2 + r.cursor.length : 0) + 4 + (mode > 0 ? 1 : 0) + (r.copy ? 12 : 0));
  w.u64(r.epoch);
  w.u32(r.partitions.length);
  for (const p of r.partitions) w.u32(p);
  w.bool(r.cursor !== null);
  if (r.cursor) w.bytes16(r.cursor);
  w.u32(r.maxBytes);
  if (mode > 0) w.u8(mode);
  if (r.copy) {
    w.u64(r.copy.id);
    w.u32(r.copy.round);
  }
  return finishFrame(w);
}

function readPartitions(r: Reader): number[] {
  const n = r.u32();
  if (n > r.remaining / 4) r.fail(`${n} partitions do not fit`);
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(r.u32());
  return out;
}

export function decodeFreeze(body: Uint8Array): FreezeRequest {
  const r = new Reader(body, 'handoff freeze');
  const epoch = r.u64();
  const partitions = readPartitions(r);
  r.done();
  return { epoch, partitions };
}

export function decodeExport(body: Uint8Array): ExportRequest {
  const r = new Reader(body, 'handoff export');
  const epoch = r.u64();
  const partitions = readPartitions(r);
  const cursor = r.bool() ? r.bytes16() : null;
  const maxBytes = r.u32();
  let mode: ExportMode = 'frozen';
  let copy: CopyRound | undefined;
  if (r.remaining > 0) {
    const m = r.u8();
    if (m === 0 || m >= MODES.length) r.fail(`unknown export mode ${m}`);
    mode = MODES[m]!;
    if (r.remaining > 0) copy = { id: r.u64(), round: r.u32() };
  }
  r.done();
  return { epoch, partitions, cursor, maxBytes, ...(mode !== 'frozen' ? { mode } : {}), ...(copy ? { copy } : {}) };
}

export function encodeExportChunk(requestId: number, c: ExportChunk): Buffer {
  const removed = c.removed ?? [];
  let n = 4 + 4 + 1 + (c.next ? 2 + c.next.length : 0) + removedTail(removed);
  for (const it of c.items) n += 2 + it.key.length + 4 + it.value.length;
  for (const s of c.sessions) n += 2 + s.clientId.length + 4 + s.record.length;
  const w = allocFrame(HandoffType.ExportChunk, requestId, n);
  w.u32(c.items.length);
  for (const it of c.items) {
    w.bytes16(it.key);
    w.bytes32(it.value);
  }
  w.u32(c.sessions.length);
  for (const s of c.sessions) {
    w.bytes16(s.clientId);
    w.bytes32(s.record);
  }
  w.bool(c.next !== null);
  if (c.next) w.bytes16(c.next);
  if (removed.length > 0) {
    w.u32(removed.length);
    for (const k of removed) w.bytes16(k);
  }
  return finishFrame(w);
}

/** Bytes of an export chunk's removed list at its end (the part an import leaves out). */
export function removedTail(removed: readonly Uint8Array[]): number {
  if (removed.length === 0) return 0;
  let n = 4;
  for (const k of removed) n += 2 + k.length;
  return n;
}

export function decodeExportChunk(body: Uint8Array): ExportChunk {
  const r = new Reader(body, 'export chunk');
  const items: KeyValue[] = [];
  const ni = r.u32();
  if (ni > r.remaining / 6) r.fail(`${ni} items do not fit`);
  for (let i = 0; i < ni; i++) {
    const key = r.bytes16();
    items.push({ key, value: r.bytes32() });
  }
  const sessions: SessionImage[] = [];
  const ns = r.u32();
  if (ns > r.remaining / 6) r.fail(`${ns} sessions do not fit`);
  for (let i = 0; i < ns; i++) {
    const clientId = r.bytes16();
    sessions.push({ clientId, record: r.bytes32() });
  }
  const next = r.bool() ? r.bytes16() : null;
  const removed: Uint8Array[] = [];
  if (r.remaining > 0) {
    const nr = r.u32();
    if (nr > r.remaining / 2) r.fail(`${nr} removed keys do not fit`);
    for (let i = 0; i < nr; i++) removed.push(r.bytes16());
  }
  r.done();
  return { items, sessions, next, ...(removed.length > 0 ? { removed } : {}) };
}
