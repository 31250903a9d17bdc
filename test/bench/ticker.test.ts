// The open loop's arrival schedule and the thread that issues it: Poisson gaps at the asked rate,
// every arrival handed over once, in order, never before its time; and the loop driving a driver
// from it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Driver } from '../../bench/load/driver.ts';
import { rng } from '../../bench/load/keys.ts';
import { runLoop } from '../../bench/load/loop.ts';
import { poissonArrivals, startTicker } from '../../bench/load/ticker.ts';
import { DEFAULT_SPEC, type LoadSpec } from '../../bench/load/workload.ts';

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

describe('runLoop, open loop', () => {
  it('answers every arrival of the window and counts none twice', async () => {
    // A driver that answers each request on the next turn: the loop alone decides what is sent.
    let sent = 0;
    const driver: Driver = {
      connect: async () => {},
      send: (slot) => {
        sent++;
        setImmediate(() => driver.onDone(slot, true));
      },
      onDone: () => {},
      misses: 0,
      lastError: '',
      close: async () => {},
    };
    // A window of 2 s, not 0.5 s: only answers inside the window count, and a loaded machine can
    // stall this process for a few hundred ms, pushing that many answers past a short window's end.
    const spec: LoadSpec = { ...DEFAULT_SPEC, rate: 2000, warmupS: 0.2, durationS: 2 };
    const r = await runLoop(driver, spec, { slots: 64, rate: 2000, worker: 0 }, Date.now() + 50);
    assert.equal(r.errors, 0, r.lastError);
    assert.equal(r.backlog, 0);
    // The window's share of a 2,000/s Poisson schedule (~4,000), and nothing sent past the schedule
    // (~4,400 in all: warm-up and window).
    assert.ok(r.ok > 2800 && r.ok < 5200, `${r.ok} answers`);
    assert.ok(sent < 5_900, `${sent} sent`);
    assert.ok(r.lateP50Us >= 0 && r.lateP99Us >= r.lateP50Us);
  });
});
