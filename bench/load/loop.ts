// The load loop of one generator process: closed (every answer immediately starts the next
// request on its slot) or open (Poisson arrivals at a fixed rate; latency is counted from the
// arrival's intended time, so a stalled server is charged for the requests it kept waiting —
// no coordinated omission). Warm-up, then a measured window; only answers inside it count.
import { Histogram, type SerializedHistogram } from './histogram.ts';
import type { Driver } from './driver.ts';
import { keyChooser, rng } from './keys.ts';
import { OP_READ, OP_WRITE, READ_FRACTION, type LoadSpec } from './workload.ts';
import { poissonArrivals, startTicker, type Ticker } from './ticker.ts';

export interface LoopShare {
  /** Slots this process drives (closed loop: its requests in flight; open loop: the cap). */
  slots: number;
  /** Open loop: this process's arrivals per second (0: closed loop). */
  rate: number;
  worker: number;
}

export interface LoopResult {
  hist: SerializedHistogram;
  ok: number;
  errors: number;
  misses: number;
  lastError: string;
  /** Seconds the window really lasted for this process. */
  windowS: number;
  /** User + system CPU of this process inside the window, µs. */
  cpuUs: number;
  /** Open loop: arrivals still queued for a free slot when the window closed. */
  backlog: number;
  /** Open loop: how late the generator itself dispatched arrivals (p50, p99), µs. */
  lateP50Us: number;
  lateP99Us: number;
}

const DRAIN_TIMEOUT_MS = 10_000;
const BACKLOG_CAP = 1 << 20;

/** Runs one measured load on a connected driver. `startAt` is epoch ms, shared by all processes. */
export function runLoop(driver: Driver, spec: LoadSpec, share: LoopShare, startAt: number): Promise<LoopResult> {
  const random = rng(spec.seed * 7919 + share.worker);
  const keys = keyChooser(spec.dist, spec.keys, spec.seed * 104729 + share.worker);
  const readFrac = READ_FRACTION[spec.workload];
  const hist = new Histogram();
  const started = new Float64Array(share.slots);
  const t0 = startAt - performance.timeOrigin;
  const mStart = t0 + spec.warmupS * 1000;
  const mEnd = mStart + spec.durationS * 1000;
  let ok = 0;
  let errors = 0;
  let inFlight = 0;
  let cpu0: NodeJS.CpuUsage | undefined;
  let cpuUs = 0;
  let windowS = spec.durationS;
  let windowClosed = false;
  let finish: () => void = () => {};
  const finished = new Promise<void>((r) => (finish = r));

  // Open-loop state: free slots and arrivals waiting for one.
  const free: number[] = [];
  const backlog = new Float64Array(share.rate > 0 ? Math.min(BACKLOG_CAP, Math.ceil(share.rate * (spec.warmupS + spec.durationS)) + 16) : 1);
  let bHead = 0;
  let bLen = 0;
  const late = new Histogram(); // µs from an arrival's intended time to its dispatch: the generator's own delay

  const issue = (slot: number, at: number): void => {
    started[slot] = at;
    inFlight++;
    driver.send(slot, random() < readFrac ? OP_READ : OP_WRITE, keys.next());
  };

  driver.onDone = (slot, good) => {
    const now = performance.now();
    inFlight--;
    if (now >= mStart && now < mEnd) {
      if (good) {
        ok++;
        hist.record((now - started[slot]!) * 1000);
      } else errors++;
    }
    if (now < mEnd) {
      if (share.rate === 0) issue(slot, now);
      else if (bLen > 0) {
        const at = backlog[bHead]!;
        bHead = bHead + 1 === backlog.length ? 0 : bHead + 1;
        bLen--;
        issue(slot, at);
      } else free.push(slot);
    } else if (inFlight === 0 && windowClosed) finish();
  };

  // Open loop: the whole schedule up front (epoch ms), issued on time by a ticker thread.
  const schedule = share.rate > 0 ? poissonArrivals(random, share.rate, t0 + performance.timeOrigin, mEnd + performance.timeOrigin) : new Float64Array(0);
  const arrive = (from: number, to: number): void => {
    // Handed over after the window closed: an answer could no longer count, so it is not sent.
    if (windowClosed) return;
    const now = performance.now();
    for (let i = from; i < to; i++) {
      const at = schedule[i]! - performance.timeOrigin;
      if (at >= mStart) late.record((now - at) * 1000);
      const slot = free.pop();
      if (slot !== undefined) issue(slot, at);
      else if (bLen < backlog.length) {
        backlog[(bHead + bLen) % backlog.length] = at;
        bLen++;
      }
    }
  };
  let ticker: Ticker | undefined;

  setTimeout(() => {
    if (share.rate === 0) for (let s = 0; s < share.slots; s++) issue(s, performance.now());
    else {
      for (let s = share.slots - 1; s >= 0; s--) free.push(s);
      ticker = startTicker(schedule, arrive);
    }
  }, Math.max(0, t0 - performance.now()));
  setTimeout(() => (cpu0 = process.cpuUsage()), Math.max(0, mStart - performance.now()));
  setTimeout(
    () => {
      const c = process.cpuUsage(cpu0);
      cpuUs = c.user + c.system;
      windowS = (performance.now() - mStart) / 1000;
      windowClosed = true;
      if (inFlight === 0) finish();
    },
    Math.max(0, mEnd - performance.now()),
  );

  const drainLimit = new Promise<void>((r) => setTimeout(r, mEnd - performance.now() + DRAIN_TIMEOUT_MS).unref());
  return Promise.race([finished, drainLimit]).then(async () => {
    const result: LoopResult = {
      hist: hist.toJSON(),
      ok,
      errors: errors + inFlight, // requests never answered count as errors
      misses: driver.misses,
      lastError: driver.lastError || (inFlight > 0 ? `${inFlight} requests unanswered ${DRAIN_TIMEOUT_MS / 1000} s after the window` : ''),
      windowS: Math.min(windowS, spec.durationS * 1.5),
      cpuUs,
      backlog: bLen,
      lateP50Us: late.total > 0 ? late.percentile(50) : 0,
      lateP99Us: late.total > 0 ? late.percentile(99) : 0,
    };
    await ticker?.stop();
    return result;
  });
}

/** Writes keys [from, to) once each with `slots` in flight: the data read workloads need. */
export function preload(driver: Driver, from: number, to: number, slots: number): Promise<{ errors: number; lastError: string }> {
  let next = from;
  let done = 0;
  let errors = 0;
  const total = to - from;
  return new Promise((resolve) => {
    if (total <= 0) return resolve({ errors: 0, lastError: '' });
    const kick = (slot: number): void => {
      if (next < to) driver.send(slot, OP_WRITE, next++);
    };
    driver.onDone = (slot, good) => {
      if (!good) errors++;
      if (++done === total) resolve({ errors, lastError: driver.lastError });
      else kick(slot);
    };
    for (let s = 0; s < Math.min(slots, total); s++) kick(s);
  });
}
