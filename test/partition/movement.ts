// Measures balance and movement of an assignment strategy over random group sets. Shared by the property
// test (which asserts bounds) and bench/partition-movement.ts (which compares strategies for the docs).
import type { Xxh64 } from '../../src/partition/hash.ts';
import { ascending, loadCap, normalizeGroups, placeBounded } from '../../src/partition/assign.ts';
import { buildRing, partitionPoints, type Ring } from '../../src/partition/ring.ts';
import { prng, randomGroups } from './prng.ts';

/** Places partitions given the ring, their points and the cap; returns group indices. */
export type Placer = (ring: Ring, points: BigUint64Array, cap: number, groupCount: number) => Uint32Array;

export const ascendingPlacer: Placer = (ring, points, cap, g) => placeBounded(ring, points, ascending(points.length), cap, g);

export interface MovementOptions {
  partitions: number;
  loadFactor: number;
  vnodes: number;
  groupCount: number;
  trials: number;
  seed: number;
  place?: Placer;
}

export interface MovementStats {
  /** Mean over trials of moved / ideal when one group joins (ideal = P / (G+1)). */
  addMean: number;
  addWorst: number;
  /** Mean over trials of moved / ideal when one group leaves (ideal = P / G); NaN when G = 1. */
  removeMean: number;
  removeWorst: number;
  /** Mean over trials of moves between groups that stay (neither the joiner nor the leaver), / ideal. */
  addCollateral: number;
  removeCollateral: number;
  /** Mean over trials of max load / (P / G) and of min load / (P / G). */
  maxLoadMean: number;
  minLoadMean: number;
  /** Worst over trials of max load / (P / G). */
  maxLoad: number;
  /** Worst over trials of min load / (P / G). */
  minLoad: number;
}

export function measureMovement(h64: Xxh64, o: MovementOptions): MovementStats {
  const place = o.place ?? ascendingPlacer;
  const points = partitionPoints(o.partitions);
  const owners = (groups: number[]): Uint32Array => {
    const sorted = normalizeGroups(groups);
    const ring = buildRing(h64, sorted, o.vnodes);
    const idx = place(ring, points, loadCap(o.partitions, sorted.length, o.loadFactor), sorted.length);
    return idx.map((i) => sorted[i] as number);
  };
  const rng = prng(o.seed);
  const G = o.groupCount;
  let addSum = 0, addWorst = 0, addColl = 0, remSum = 0, remWorst = 0, remColl = 0, maxLoad = 0, minLoad = Infinity, maxSum = 0, minSum = 0;
  for (let t = 0; t < o.trials; t++) {
    const groups = randomGroups(rng, G + 1);
    const joiner = groups.pop() as number;
    const before = owners(groups);
    const loads = counts(before, groups);
    const hi = Math.max(...loads) / (o.partitions / G);
    const lo = Math.min(...loads) / (o.partitions / G);
    maxLoad = Math.max(maxLoad, hi);
    minLoad = Math.min(minLoad, lo);
    maxSum += hi;
    minSum += lo;

    const afterAdd = owners([...groups, joiner]);
    const addIdeal = o.partitions / (G + 1);
    const add = moved(before, afterAdd) / addIdeal;
    addSum += add;
    addWorst = Math.max(addWorst, add);
    addColl += collateral(before, afterAdd, joiner) / addIdeal;

    if (G > 1) {
      const leaver = groups[rng.below(G)] as number;
      const afterRemove = owners(groups.filter((g) => g !== leaver));
      const rem = moved(before, afterRemove) / (o.partitions / G);
      remSum += rem;
      remWorst = Math.max(remWorst, rem);
      remColl += collateral(before, afterRemove, leaver) / (o.partitions / G);
    }
  }
  return {
    addMean: addSum / o.trials,
    addWorst,
    removeMean: G > 1 ? remSum / o.trials : NaN,
    removeWorst: G > 1 ? remWorst : NaN,
    addCollateral: addColl / o.trials,
    removeCollateral: G > 1 ? remColl / o.trials : NaN,
    maxLoadMean: maxSum / o.trials,
    minLoadMean: minSum / o.trials,
    maxLoad,
    minLoad,
  };
}

export function moved(a: Uint32Array, b: Uint32Array): number {
  let n = 0;
  for (let p = 0; p < a.length; p++) if (a[p] !== b[p]) n++;
  return n;
}

/** Moves that neither go to nor come from `changed`: the price of the cap, beyond the ideal. */
export function collateral(a: Uint32Array, b: Uint32Array, changed: number): number {
  let n = 0;
  for (let p = 0; p < a.length; p++) if (a[p] !== b[p] && a[p] !== changed && b[p] !== changed) n++;
  return n;
}

/** Partitions per group, in the order of `groups` (zero for a group that owns none). */
export function counts(owner: Uint32Array, groups: readonly number[]): number[] {
  const c = new Map<number, number>(groups.map((g) => [g, 0]));
  for (const g of owner) c.set(g, (c.get(g) ?? 0) + 1);
  return groups.map((g) => c.get(g) ?? 0);
}
