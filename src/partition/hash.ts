// key → partition: partition = xxh64(key bytes, seed 0) mod P.
// The WASM instantiation is the only async step; everything after it is synchronous and pure.
import xxhash from 'xxhash-wasm';

/** xxh64 with seed 0 over raw bytes, as an unsigned 64-bit bigint. */
export type Xxh64 = (bytes: Uint8Array) => bigint;

/** Upper bound on P: keeps the table small and partition numbers exact in a Uint32Array. */
export const MAX_PARTITIONS = 1 << 20;

type XxhashApi = Awaited<ReturnType<typeof xxhash>>;

// One WASM instance per process is enough: JS is single-threaded and each call copies its input in.
let loading: Promise<XxhashApi> | undefined;

function loadApi(): Promise<XxhashApi> {
  loading ??= xxhash().catch((err: unknown) => {
    loading = undefined; // let a later call retry instead of caching the failure forever
    throw err;
  });
  return loading;
}

/** Loads the WASM hasher (once per process) and returns xxh64 with seed 0. */
export async function loadXxh64(): Promise<Xxh64> {
  const { h64Raw } = await loadApi();
  // Wrapped so a stray second argument (e.g. an index from Array.map) can never become the seed.
  return (bytes) => h64Raw(bytes);
}

export interface Partitioner {
  readonly partitions: number;
  /** The partition of one key, in [0, partitions). */
  partitionOf(key: Uint8Array): number;
  /**
   * The partitions of many keys; writes into `out` when given (it must hold keys.length entries)
   * and returns a view of exactly keys.length entries.
   */
  partitionsOf(keys: readonly Uint8Array[], out?: Uint32Array): Uint32Array;
}

export function checkPartitionCount(partitions: number): void {
  if (!Number.isInteger(partitions) || partitions < 1 || partitions > MAX_PARTITIONS) {
    throw new RangeError(`partition count must be an integer in [1, ${MAX_PARTITIONS}], got ${partitions}`);
  }
}

export async function createPartitioner(partitions: number): Promise<Partitioner> {
  checkPartitionCount(partitions);
  const { h64Raw } = await loadApi();
  const toPartition = reducer(partitions);

  // xxhash-wasm has no batch call and does not expose its memory: every key costs one JS→WASM call
  // and one bigint. The batch path is therefore a tight loop; measured in bench/partition.ts.
  return {
    partitions,
    partitionOf: (key) => toPartition(h64Raw(key)),
    partitionsOf(keys, out) {
      const n = keys.length;
      const dst = out ?? new Uint32Array(n);
      if (dst.length < n) throw new RangeError(`out holds ${dst.length} entries, need ${n}`);
      for (let i = 0; i < n; i++) dst[i] = toPartition(h64Raw(keys[i] as Uint8Array));
      return dst.length === n ? dst : dst.subarray(0, n);
    },
  };
}

/** hash → hash mod P as a number. A power-of-two P takes a mask, which is ~25% faster than `%` on a bigint. */
function reducer(partitions: number): (h: bigint) => number {
  if ((partitions & (partitions - 1)) === 0) {
    const mask = BigInt(partitions - 1);
    return (h) => Number(h & mask);
  }
  const p = BigInt(partitions);
  return (h) => Number(h % p);
}
