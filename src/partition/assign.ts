// partition → shard group by consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam 2018):
// each partition walks clockwise from its ring position to the first group still below the cap ⌈c·P/G⌉.
import type { Xxh64 } from './hash.ts';
import { checkPartitionCount } from './hash.ts';
import { buildRing, partitionPoints, successor, type Ring } from './ring.ts';

export const DEFAULT_LOAD_FACTOR = 1.25;
/** Virtual nodes per group. Part of the algorithm: changing it reshuffles every table (see docs/partitioning.md). */
export const DEFAULT_VNODES = 256;
/** Group ids are u32 (they are stored in a Uint32Array owner table). */
export const MAX_GROUP_ID = 0xffff_ffff;
/** The load factor is fixed-point in thousandths so the cap is exact integer arithmetic everywhere. */
export const LOAD_FACTOR_SCALE = 1000;

export interface AssignInput {
  partitions: number;
  /** Shard group ids, any order, no duplicates. */
  groups: readonly number[];
  /** c ≥ 1, a multiple of 1/1000; default 1.25. */
  loadFactor?: number;
  vnodes?: number;
}

export interface Move {
  partition: number;
  from: number;
  to: number;
}

/** c as an integer number of thousandths; throws if c < 1 or not a multiple of 1/1000. */
export function loadFactorMilli(loadFactor: number): number {
  const m = Math.round(loadFactor * LOAD_FACTOR_SCALE);
  if (!Number.isFinite(loadFactor) || m < LOAD_FACTOR_SCALE || m > 0xffff || Math.abs(loadFactor * LOAD_FACTOR_SCALE - m) > 1e-6) {
    throw new RangeError(`load factor must be in [1, 65.535] in steps of 0.001, got ${loadFactor}`);
  }
  return m;
}

/** ⌈c·P/G⌉ in integers (a float product could round differently in another language at exact boundaries). */
export function loadCap(partitions: number, groupCount: number, loadFactor: number): number {
  const den = LOAD_FACTOR_SCALE * groupCount;
  return Math.floor((loadFactorMilli(loadFactor) * partitions + den - 1) / den);
}

/** Sorted, de-duplicated copy of valid group ids; throws on an empty set, a bad id or a duplicate. */
export function normalizeGroups(groups: readonly number[]): number[] {
  if (groups.length === 0) throw new RangeError('at least one group is required');
  const sorted = [...groups].sort((a, b) => a - b);
  sorted.forEach((g, i) => {
    if (!Number.isInteger(g) || g < 0 || g > MAX_GROUP_ID) throw new RangeError(`bad group id ${g}`);
    if (i > 0 && sorted[i - 1] === g) throw new RangeError(`duplicate group id ${g}`);
  });
  return sorted;
}

/** owner[p] = the group id that owns partition p. Same result for the same set of groups in any order. */
export function assignOwners(h64: Xxh64, input: AssignInput): Uint32Array {
  const { partitions, loadFactor = DEFAULT_LOAD_FACTOR, vnodes = DEFAULT_VNODES } = input;
  checkPartitionCount(partitions);
  if (!Number.isInteger(vnodes) || vnodes < 1) throw new RangeError(`vnodes must be a positive integer, got ${vnodes}`);
  const groups = normalizeGroups(input.groups);
  const ring = buildRing(h64, groups, vnodes);
  const cap = loadCap(partitions, groups.length, loadFactor);
  const points = partitionPoints(partitions);
  const idx = placeBounded(ring, points, ascending(partitions), cap, groups.length);
  return idx.map((g) => groups[g] as number);
}

/** 0..n-1: ascending partition number, which is also clockwise ring order from 0 (why: docs/partitioning.md). */
export function ascending(n: number): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  return order;
}

/**
 * Places partitions in the given order, each at the first virtual node clockwise from its point whose
 * group holds fewer than `cap` partitions. Returns group indices. Needs cap·groupCount ≥ points.length,
 * which ⌈c·P/G⌉ with c ≥ 1 guarantees, so every walk ends within one turn of the ring.
 */
export function placeBounded(ring: Ring, points: BigUint64Array, order: ArrayLike<number>, cap: number, groupCount: number): Uint32Array {
  if (cap * groupCount < points.length) throw new RangeError('cap too small to place every partition');
  const load = new Uint32Array(groupCount);
  const owner = new Uint32Array(points.length);
  const n = ring.points.length;
  for (let k = 0; k < order.length; k++) {
    const p = order[k] as number;
    let v = successor(ring, points[p] as bigint);
    while ((load[ring.group[v] as number] as number) >= cap) v = v + 1 === n ? 0 : v + 1;
    const g = ring.group[v] as number;
    owner[p] = g;
    load[g] = (load[g] as number) + 1;
  }
  return owner;
}

/** The partitions whose owner differs, in ascending partition order. */
export function diff(oldOwner: Uint32Array, newOwner: Uint32Array): Move[] {
  if (oldOwner.length !== newOwner.length) {
    throw new RangeError(`owner tables differ in partition count: ${oldOwner.length} vs ${newOwner.length}`);
  }
  const moves: Move[] = [];
  for (let p = 0; p < oldOwner.length; p++) {
    const from = oldOwner[p] as number;
    const to = newOwner[p] as number;
    if (from !== to) moves.push({ partition: p, from, to });
  }
  return moves;
}
