// What a run does: the operation mix, key choice and sizes, and how load is applied.
import type { KeyDist } from './keys.ts';

/** write: puts only; A, B, C: YCSB core workloads (50/50, 95/5 and 100/0 read/update). */
export type WorkloadName = 'write' | 'A' | 'B' | 'C';

export const READ_FRACTION: Record<WorkloadName, number> = { write: 0, A: 0.5, B: 0.95, C: 1 };

export function parseWorkload(s: string): WorkloadName {
  const w = s === 'write' || s === 'w' ? 'write' : s.toUpperCase();
  if (w === 'write' || w === 'A' || w === 'B' || w === 'C') return w;
  throw new Error(`unknown workload "${s}" (write, A, B, C)`);
}

export interface LoadSpec {
  workload: WorkloadName;
  dist: KeyDist;
  keys: number;
  keySize: number;
  valueSize: number;
  /** Closed loop: requests in flight, in total over all generator processes. */
  inflight: number;
  /** Open loop when > 0: arrivals per second in total (Poisson); inflight then caps outstanding requests. */
  rate: number;
  warmupS: number;
  durationS: number;
  seed: number;
}

export const DEFAULT_SPEC: LoadSpec = {
  workload: 'write',
  dist: 'uniform',
  keys: 10_000,
  keySize: 16,
  valueSize: 100,
  inflight: 64,
  rate: 0,
  warmupS: 1,
  durationS: 3,
  seed: 1,
};

/** Op kinds as small integers so the hot path passes numbers, not strings. */
export const OP_READ = 0;
export const OP_WRITE = 1;
export type OpKind = typeof OP_READ | typeof OP_WRITE;
