// Open-loop arrivals on time. Node's timers run on a 1 ms clock: a timer asked for 0.3 ms fires
// after 1–2 ms. As the open loop counts latency from an arrival's intended time (no coordinated
// omission), that lateness was charged to the server: measured on an idle generator at 1,000
// arrivals/s, setTimeout issued them 0.56 ms late at p50 and 1 ms at p90. So a worker thread
// sleeps until each arrival with Atomics.wait (a futex with a sub-millisecond timeout) and
// posts the count of arrivals due; the main thread issues them at once.
import { Worker } from 'node:worker_threads';

/** Most arrivals one schedule may hold (8 bytes each). */
export const MAX_ARRIVALS = 1 << 22;

// Plain JavaScript (eval: true): no loader needed in the thread. `at` holds epoch milliseconds.
const THREAD = `
const { parentPort, workerData } = require('node:worker_threads');
const at = new Float64Array(workerData.at);
const nap = new Int32Array(new SharedArrayBuffer(4));
const now = () => performance.timeOrigin + performance.now();
let next = 0;
while (next < at.length) {
  const wait = at[next] - now();
  if (wait > 0) Atomics.wait(nap, 0, 0, wait);
  const t = now();
  while (next < at.length && at[next] <= t) next++;
  parentPort.postMessage(next);
}
`;

/** Arrival times in [from, to) (epoch ms) with exponential gaps: Poisson arrivals, as independent clients would produce. */
export function poissonArrivals(random: () => number, rate: number, from: number, to: number): Float64Array {
  const gap = 1000 / rate;
  const out: number[] = [];
  for (let t = from; t < to; t += -Math.log(1 - random()) * gap) {
    out.push(t);
    if (out.length > MAX_ARRIVALS) throw new Error(`open loop: over ${MAX_ARRIVALS} arrivals in one run (rate × time)`);
  }
  return Float64Array.from(out);
}

export interface Ticker {
  stop(): Promise<void>;
}

/**
 * Calls `onDue(from, to)` as arrivals [from, to) of `at` (epoch ms, ascending) come due, from a
 * thread that wakes within tens of microseconds of each.
 */
export function startTicker(at: Float64Array, onDue: (from: number, to: number) => void): Ticker {
  const shared = new Float64Array(new SharedArrayBuffer(at.length * 8));
  shared.set(at);
  const worker = new Worker(THREAD, { eval: true, workerData: { at: shared.buffer } });
  let done = 0;
  worker.on('message', (to: number) => {
    if (to > done) onDue(done, to);
    done = Math.max(done, to);
  });
  // No 'error' listener: an error in the thread is thrown here, as an unhandled 'error' event.
  return {
    stop: async () => {
      await worker.terminate();
    },
  };
}
