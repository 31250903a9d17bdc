// The partition table: which shard group owns each partition at an epoch. It travels through the
// placement group's Raft log and to clients, so it has a compact, strictly validated binary form.
import { checkPartitionCount } from './hash.ts';
import { LOAD_FACTOR_SCALE, loadFactorMilli, MAX_GROUP_ID } from './assign.ts';

export interface PartitionTable {
  epoch: number;
  partitions: number;
  loadFactor: number;
  /** Shard group ids, strictly ascending. */
  groups: number[];
  /** owner[p] = id of the group that owns partition p; always a member of `groups`. */
  owner: Uint32Array;
}

/**
 * 1024 partitions: one partition is ~0.1% of the data, so a group change moves data in steps of 0.1%
 * and each hand-off is small; the table stays ~1 KiB; and with 16 groups each still owns ~64
 * partitions, enough for the hash ring to spread them evenly. See docs/partitioning.md.
 */
export const DEFAULT_PARTITIONS = 1024;
export const MAX_GROUPS = 0xffff;
export const TABLE_FORMAT_VERSION = 1;

// Layout, little-endian:
//   u8 version | u8 reserved (0) | u16 load factor in thousandths | u32 partitions P | u64 epoch
//   u32 G | G × u32 group ids (strictly ascending) | P × owner as an index into the group ids,
//   1 byte each when G ≤ 256, else 2 bytes.
const HEADER = 20;

export class TableDecodeError extends Error {
  override name = 'TableDecodeError';
}

export function ownerWidth(groupCount: number): 1 | 2 {
  return groupCount <= 0x100 ? 1 : 2;
}

/** Throws a RangeError unless the table is well formed (the same rules the decoder enforces). */
export function checkTable(t: PartitionTable): void {
  if (!Number.isSafeInteger(t.epoch) || t.epoch < 0) throw new RangeError(`bad epoch ${t.epoch}`);
  checkPartitionCount(t.partitions);
  loadFactorMilli(t.loadFactor);
  if (t.groups.length < 1 || t.groups.length > MAX_GROUPS) throw new RangeError(`bad group count ${t.groups.length}`);
  t.groups.forEach((g, i) => {
    if (!Number.isInteger(g) || g < 0 || g > MAX_GROUP_ID) throw new RangeError(`bad group id ${g}`);
    if (i > 0 && (t.groups[i - 1] as number) >= g) throw new RangeError('group ids must be strictly ascending');
  });
  if (t.owner.length !== t.partitions) throw new RangeError(`owner has ${t.owner.length} entries, expected ${t.partitions}`);
  const members = new Set(t.groups);
  for (const g of t.owner) if (!members.has(g)) throw new RangeError(`owner names group ${g}, which is not in the table`);
}

export function encodeTable(t: PartitionTable): Uint8Array {
  checkTable(t);
  const G = t.groups.length;
  const w = ownerWidth(G);
  const buf = new Uint8Array(HEADER + 4 * G + w * t.partitions);
  const dv = new DataView(buf.buffer);
  dv.setUint8(0, TABLE_FORMAT_VERSION);
  dv.setUint16(2, loadFactorMilli(t.loadFactor), true);
  dv.setUint32(4, t.partitions, true);
  dv.setBigUint64(8, BigInt(t.epoch), true);
  dv.setUint32(16, G, true);
  const index = new Map<number, number>();
  t.groups.forEach((g, i) => {
    dv.setUint32(HEADER + 4 * i, g, true);
    index.set(g, i);
  });
  const base = HEADER + 4 * G;
  for (let p = 0; p < t.partitions; p++) {
    const i = index.get(t.owner[p] as number) as number;
    if (w === 1) buf[base + p] = i;
    else dv.setUint16(base + 2 * p, i, true);
  }
  return buf;
}

/** Decodes and validates; any malformed input throws TableDecodeError, never a partial table. */
export function decodeTable(bytes: Uint8Array): PartitionTable {
  const fail = (why: string): never => {
    throw new TableDecodeError(`partition table: ${why}`);
  };
  if (bytes.length < HEADER) fail(`truncated header (${bytes.length} bytes)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dv.getUint8(0) !== TABLE_FORMAT_VERSION) fail(`unknown version ${dv.getUint8(0)}`);
  if (dv.getUint8(1) !== 0) fail('reserved byte is not zero');
  const milli = dv.getUint16(2, true);
  if (milli < LOAD_FACTOR_SCALE) fail(`load factor ${milli}/1000 is below 1`);
  const partitions = dv.getUint32(4, true);
  const epoch = dv.getBigUint64(8, true);
  if (epoch > BigInt(Number.MAX_SAFE_INTEGER)) fail('epoch exceeds 2^53-1');
  const G = dv.getUint32(16, true);
  if (G < 1 || G > MAX_GROUPS) fail(`bad group count ${G}`);
  const w = ownerWidth(G);
  // Checked in this order so a huge P or G in a short buffer fails on length, before any allocation.
  const expected = HEADER + 4 * G + w * partitions;
  if (bytes.length !== expected) fail(`length ${bytes.length}, expected ${expected}`);

  const table: PartitionTable = {
    epoch: Number(epoch),
    partitions,
    loadFactor: milli / LOAD_FACTOR_SCALE,
    groups: Array.from({ length: G }, (_, i) => dv.getUint32(HEADER + 4 * i, true)),
    owner: new Uint32Array(partitions),
  };
  const base = HEADER + 4 * G;
  for (let p = 0; p < partitions; p++) {
    const i = w === 1 ? (bytes[base + p] as number) : dv.getUint16(base + 2 * p, true);
    if (i >= G) fail(`partition ${p} names group index ${i} of ${G}`);
    table.owner[p] = table.groups[i] as number;
  }
  try {
    checkTable(table); // the remaining rules (P range, ascending ids) are shared with the encoder
  } catch (err) {
    fail((err as Error).message);
  }
  return table;
}

export interface GroupLoad {
  group: number;
  partitions: number;
}

/** Partitions per group, for every group of the table (including those that own none), by group id. */
export function summarize(t: PartitionTable): GroupLoad[] {
  const count = new Map<number, number>(t.groups.map((g) => [g, 0]));
  for (const g of t.owner) count.set(g, (count.get(g) ?? 0) + 1);
  return [...count].sort((a, b) => a[0] - b[0]).map(([group, partitions]) => ({ group, partitions }));
}
