// The open loop's arrival schedule and the thread that issues it: Poisson gaps at the asked rate,
// and every arrival handed over once, in order, never before its time.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rng } from '../../bench/load/keys.ts';
import { poissonArrivals, startTicker } from '../../bench/load/ticker.ts';

describe('poissonArrivals', () => {
  it('stays in its window, ascends, and averages the asked rate', () => {
    const at = poissonArrivals(rng(7), 2000, 1000, 21_000); // 20 s at 2,000/s
    assert.ok(at.length > 0);
    assert.equal(at[0], 1000);
    for (let i = 1; i < at.length; i++) assert.ok(at[i]! >= at[i - 1]! && at[i]! < 21_000);
    assert.ok(Math.abs(at.length - 40_000) < 1_000, `${at.length} arrivals`);
    // Exponential gaps: the standard deviation equals the mean (a fixed pacing would give 0).
    const gaps = Array.from(at.subarray(1), (t, i) => t - at[i]!);
    const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
    const sd = Math.sqrt(gaps.reduce((a, b) => a + (b - mean) ** 2, 0) / gaps.length);
    assert.ok(Math.abs(sd / mean - 1) < 0.05, `sd/mean ${sd / mean}`);
  });

  it('refuses a schedule too large to hold', () => {
    assert.throws(() => poissonArrivals(rng(1), 1e9, 0, 60_000), /arrivals in one run/);
  });
});

describe('startTicker', () => {
  it('hands over every arrival once, in order, and none early', async () => {
    const start = performance.timeOrigin + performance.now() + 20;
    const at = poissonArrivals(rng(3), 5000, start, start + 200);
    const seen: number[] = [];
    let early = 0;
    let resolve: () => void = () => {};
    const all = new Promise<void>((r) => (resolve = r));
    const ticker = startTicker(at, (from, to) => {
      const now = performance.timeOrigin + performance.now();
      for (let i = from; i < to; i++) {
        seen.push(i);
        // The two threads' clocks share an origin to within microseconds.
        if (at[i]! > now + 0.05) early++;
      }
      if (to === at.length) resolve();
    });
    await all;
    await ticker.stop();
    assert.deepEqual(seen, Array.from(at, (_, i) => i));
    assert.equal(early, 0);
  });
});
