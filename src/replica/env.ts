// What the replica shell takes from its process: a clock, timers, a way to run work after the
// current turn, and randomness. The server passes the system's; the simulator passes ones driven by
// its seeded event queue, so the same shell runs in both. One env serves a whole process (several
// replicas may share it).

import { randomBytes } from 'node:crypto';
import { every } from '../timers/every.ts';

export interface ReplicaEnv {
  /** Monotonic milliseconds. */
  now(): number;
  /** Calls `fn` every `ms` milliseconds until the returned function is called. */
  every(ms: number, fn: () => void): () => void;
  /** Runs `fn` after the rest of the current turn (so a turn's proposals share one Ready). */
  defer(fn: () => void): void;
  /** Uniform in [0, 1): election jitter. */
  random(): number;
  /**
   * Differs between any two starts of the process. Requests tagged with it cannot be mistaken for a
   * later start's when their answers arrive after a crash and restart.
   */
  readonly incarnation: number;
  /** Unique within this start of the process (across all its replicas, old and new): 1, 2, 3, ... */
  nextId(): number;
}

/** A counter for `ReplicaEnv.nextId`. */
export function idCounter(): () => number {
  let last = 0;
  return () => ++last;
}

export const systemEnv: ReplicaEnv = {
  now: () => performance.now(),
  every, // one timer per period per process, aligned (src/timers/every.ts)
  defer: (fn) => void setImmediate(fn),
  random: Math.random,
  incarnation: randomBytes(6).readUIntBE(0, 6),
  nextId: idCounter(),
};
