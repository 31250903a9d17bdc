// Periodic work of one process, woken together. Every period gets one timer per process, and each
// timer fires on the wall-clock multiples of its period, so periods that divide one another fire
// in the same wake-up (a 50 ms tick, a 100 ms pass and a 1 s keepalive: one wake-up every 50 ms,
// not three schedules). At rest, wake-ups are most of what a process costs on a VM; see
// docs/processes.md.

interface Shared {
  timer: NodeJS.Timeout | undefined;
  calls: Set<() => void>;
}

const byPeriod = new Map<number, Shared>();

function arm(ms: number, shared: Shared): void {
  // The next multiple of `ms` since the epoch; a late wake-up skips the beats it missed.
  shared.timer = setTimeout(() => {
    for (const call of shared.calls) call();
    if (shared.calls.size > 0) arm(ms, shared);
  }, ms - (Date.now() % ms));
  shared.timer.unref();
}

/**
 * Calls `fn` every `ms` milliseconds (on multiples of `ms` of the wall clock) until the returned
 * function is called. The timer never keeps the process alive.
 */
export function every(ms: number, fn: () => void): () => void {
  if (!(ms >= 1)) throw new RangeError(`every: period ${ms} ms`);
  let shared = byPeriod.get(ms);
  if (!shared) {
    shared = { timer: undefined, calls: new Set() };
    byPeriod.set(ms, shared);
    arm(ms, shared);
  }
  const own = shared;
  const call = (): void => fn(); // a distinct entry per caller, even for the same fn
  own.calls.add(call);
  return () => {
    own.calls.delete(call);
    if (own.calls.size === 0 && byPeriod.get(ms) === own) {
      clearTimeout(own.timer);
      byPeriod.delete(ms);
    }
  };
}

/**
 * A periodic call whose period changes with what its owner is doing (fast while busy, slow at
 * rest): `pace(ms)` moves it to the timer of that period, and does nothing if it is there already.
 * `every` is injectable so the simulator can drive it.
 */
export class Pacer {
  private period = 0;
  private stopTimer: (() => void) | undefined;
  private stopped = false;

  constructor(
    private readonly fn: () => void,
    private readonly everyFn: (ms: number, fn: () => void) => () => void = every,
  ) {}

  /** The period now (0 before the first pace). */
  get ms(): number {
    return this.period;
  }

  pace(ms: number): void {
    if (ms === this.period || this.stopped) return;
    this.stopTimer?.();
    this.period = ms;
    this.stopTimer = this.everyFn(ms, this.fn);
  }

  stop(): void {
    this.stopped = true;
    this.stopTimer?.();
  }
}
