// Which replicas recently left a request unanswered. A replica cut off by a network partition
// neither refuses nor resets connections: it answers nothing. So every attempt gets its own bound
// (never the whole deadline), and a replica that let one lapse is tried last for a while.
// Shared by the client library and the server's relay to other shard groups.

/**
 * How long a replica that left an attempt unanswered is tried last: about two election timeouts,
 * doubling while it keeps leaving them unanswered (a partition), up to QUIET_HOLD_MAX_MS. Each
 * retry of a cut-off replica costs a caller a whole attempt: with a fixed hold, a door whose first
 * replica of a group was cut off stalled for an attempt every 3.5 s (an outside chaos run).
 */
const QUIET_HOLD_MS = 2000;
const QUIET_HOLD_MAX_MS = 16_000;

/** The default bound of one attempt for calls with the given deadline: a third of it, at least 500 ms. */
export function attemptMsFor(timeoutMs: number): number {
  return Math.max(500, Math.floor(timeoutMs / 3));
}

export class Responsiveness {
  private readonly quietUntil = new Map<string, number>();
  /** Attempts left unanswered in a row, per replica (reset by an answer). */
  private readonly misses = new Map<string, number>();

  constructor(private readonly attemptMs: number) {}

  /** How long the next attempt may wait for its answer. */
  attemptWait(deadline: number): number {
    return Math.max(1, Math.min(deadline - Date.now(), this.attemptMs));
  }

  unanswered(addr: string): void {
    const misses = (this.misses.get(addr) ?? 0) + 1;
    this.misses.set(addr, misses);
    this.quietUntil.set(addr, Date.now() + Math.min(QUIET_HOLD_MAX_MS, QUIET_HOLD_MS * 2 ** (misses - 1)));
  }

  answered(addr: string): void {
    this.quietUntil.delete(addr);
    this.misses.delete(addr);
  }

  isQuiet(addr: string, now = Date.now()): boolean {
    return (this.quietUntil.get(addr) ?? 0) > now;
  }

  /** `addrs` with the replicas that recently left an attempt unanswered moved to the end (stable). */
  responsiveFirst(addrs: string[]): string[] {
    const now = Date.now();
    return [...addrs.filter((a) => !this.isQuiet(a, now)), ...addrs.filter((a) => this.isQuiet(a, now))];
  }
}
