// The hash ring over [0, 2^64): V virtual nodes per group at xxh64("<groupId>#<i>") (ASCII decimal, so
// another implementation reproduces every position exactly), and partition p at ⌊p·2^64/P⌋.
import type { Xxh64 } from './hash.ts';

export interface Ring {
  /** Virtual-node positions, ascending. */
  readonly points: BigUint64Array;
  /** For each virtual node (same order as points), the index of its group in the sorted group list. */
  readonly group: Uint32Array;
}

const utf8 = new TextEncoder();
// Reused across calls (synchronous, single-threaded): encode() allocating per virtual node tripled ring build time.
const scratch = new Uint8Array(64);

export function hashString(h64: Xxh64, s: string): bigint {
  const { read, written } = utf8.encodeInto(s, scratch);
  return read === s.length ? h64(scratch.subarray(0, written)) : h64(utf8.encode(s));
}

/** `groups` must be sorted ascending and unique; ring.group holds indices into it. */
export function buildRing(h64: Xxh64, groups: readonly number[], vnodes: number): Ring {
  const n = groups.length * vnodes;
  const pos = new BigUint64Array(n);
  const grp = new Uint32Array(n);
  const rep = new Uint32Array(n);
  for (let g = 0, k = 0; g < groups.length; g++) {
    for (let i = 0; i < vnodes; i++, k++) {
      pos[k] = hashString(h64, `${groups[g]}#${i}`);
      grp[k] = g;
      rep[k] = i;
    }
  }
  // Ties on a 64-bit hash are practically impossible, but the order must still be total so that every
  // node sorts identically: break them by group id, then by replica number.
  const order = Array.from({ length: n }, (_, k) => k).sort((a, b) => {
    const pa = pos[a] as bigint;
    const pb = pos[b] as bigint;
    if (pa !== pb) return pa < pb ? -1 : 1;
    return (grp[a] as number) - (grp[b] as number) || (rep[a] as number) - (rep[b] as number);
  });
  const points = new BigUint64Array(n);
  const group = new Uint32Array(n);
  order.forEach((k, j) => {
    points[j] = pos[k] as bigint;
    group[j] = grp[k] as number;
  });
  return { points, group };
}

/** Index of the first virtual node at or clockwise after `point` (wrapping past the top to 0). */
export function successor(ring: Ring, point: bigint): number {
  const pts = ring.points;
  let lo = 0;
  let hi = pts.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((pts[mid] as bigint) < point) lo = mid + 1;
    else hi = mid;
  }
  return lo === pts.length ? 0 : lo;
}

/**
 * Ring positions of partitions 0..P-1: evenly spaced at ⌊p·2^64/P⌋ rather than hashed. A group's share
 * then follows its arc length alone, without the binomial noise of P random points; measured to give
 * better minimum loads and fewer cap-induced moves (docs/partitioning.md). Independent of the groups.
 */
export function partitionPoints(partitions: number): BigUint64Array {
  const pts = new BigUint64Array(partitions);
  const n = BigInt(partitions);
  for (let p = 0; p < partitions; p++) pts[p] = (BigInt(p) << 64n) / n;
  return pts;
}
