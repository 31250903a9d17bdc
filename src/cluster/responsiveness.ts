// Which replicas recently left a request unanswered. A replica cut off by a network partition
// neither refuses nor resets connections: it answers nothing. So every attempt gets its own bound
// (never the whole deadline), and a replica that let one lapse is tried last for a while.
// Shared by the client library and the server's relay to other shard groups.

/** How long a replica that left an attempt unanswered is tried last (about two election timeouts). */
const QUIET_HOLD_MS = 2000;

/** The default bound of one attempt for calls with the given deadline: a third of it, at least 500 ms. */
export function attemptMsFor(timeoutMs: number): number {
  return Math.max(500, Math.floor(timeoutMs / 3));
}

export class Responsiveness {
  private readonly quietUntil = new Map<string, number>();

  constructor(private readonly attemptMs: number) {}

  /** How long the next attempt may wait for its answer. */
  attemptWait(deadline: number): number {
    return Math.max(1, Math.min(deadline - Date.now(), this.attemptMs));
  }

  unanswered(addr: string): void {
    this.quietUntil.set(addr, Date.now() + QUIET_HOLD_MS);
  }

  answered(addr: string): void {
    this.quietUntil.delete(addr);
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
