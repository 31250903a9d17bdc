// What the replica shell takes from its process: a clock, timers, a way to run work after the
// current turn, and randomness. The server passes the system's; the simulator passes ones driven by
// its seeded event queue, so the same shell runs in both. One env serves a whole process (several
// replicas may share it).

import { randomBytes } from 'node:crypto';

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

/**
 * Periodic calls of one process that share a period share one timer: the replicas a process hosts
 * tick in the same wake-up (and send their heartbeats together) instead of each waking it.
 */
const timersByPeriod = new Map<number, { timer: NodeJS.Timeout; calls: Set<() => void> }>();

function sharedEvery(ms: number, fn: () => void): () => void {
  let shared = timersByPeriod.get(ms);
  if (!shared) {
    const calls = new Set<() => void>();
    const timer = setInterval(() => {
      for (const call of calls) call();
    }, ms);
    timer.unref();
    shared = { timer, calls };
    timersByPeriod.set(ms, shared);
  }
  const { timer, calls } = shared;
  const call = (): void => fn(); // a distinct entry per caller, even for the same fn
  calls.add(call);
  return () => {
    calls.delete(call);
    if (calls.size === 0 && timersByPeriod.get(ms)?.timer === timer) {
      clearInterval(timer);
      timersByPeriod.delete(ms);
    }
  };
}

export const systemEnv: ReplicaEnv = {
  now: () => performance.now(),
  every: sharedEvery,
  defer: (fn) => void setImmediate(fn),
  random: Math.random,
  incarnation: randomBytes(6).readUIntBE(0, 6),
  nextId: idCounter(),
};
