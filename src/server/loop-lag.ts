// Event-loop lag measured by a timer the process runs anyway: how late each call of a periodic
// callback (the Raft tick) comes against its period. A timer of its own (monitorEventLoopDelay
// samples every 10 ms) costs 100 wake-ups a second per process at idle, the largest idle cost of a
// replica; the tick already wakes the loop every tick-ms. Reset after each scrape.

/** Samples kept for the percentiles between two scrapes (20 ticks/s: over 3 minutes). */
const KEEP = 4096;

export interface LagStats {
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export class LoopLag {
  private samples: number[] = [];
  private next = 0;
  private sum = 0;
  private count = 0;
  private max = 0;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** `fn`, recording on each call how much later than `periodMs` after the previous call it runs. */
  timed(periodMs: number, fn: () => void): () => void {
    let last = -1;
    return () => {
      const t = this.now();
      if (last >= 0) this.record(Math.max(0, t - last - periodMs));
      last = t;
      fn();
    };
  }

  record(lateMs: number): void {
    this.sum += lateMs;
    this.count++;
    this.max = Math.max(this.max, lateMs);
    // Past KEEP samples the oldest are overwritten; mean and max stay exact.
    if (this.samples.length < KEEP) this.samples.push(lateMs);
    else this.samples[this.next] = lateMs;
    this.next = (this.next + 1) % KEEP;
  }

  stats(): LagStats {
    if (this.count === 0) return { meanMs: 0, p50Ms: 0, p99Ms: 0, maxMs: 0 };
    const sorted = [...this.samples].sort((a, b) => a - b);
    const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
    return { meanMs: this.sum / this.count, p50Ms: at(0.5), p99Ms: at(0.99), maxMs: this.max };
  }

  reset(): void {
    this.samples = [];
    this.next = 0;
    this.sum = 0;
    this.count = 0;
    this.max = 0;
  }
}
