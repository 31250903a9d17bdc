// Event-loop lag from the lateness of a periodic callback (src/server/loop-lag.ts), on a fake clock.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LoopLag } from '../../src/server/loop-lag.ts';

test('each call records how late it came against the period; stats cover the calls since the reset', () => {
  let now = 0;
  const lag = new LoopLag(() => now);
  let calls = 0;
  const tick = lag.timed(50, () => calls++);
  assert.deepEqual(lag.stats(), { meanMs: 0, p50Ms: 0, p99Ms: 0, maxMs: 0 }, 'nothing yet');
  for (const t of [0, 50, 100, 400, 450, 501]) {
    now = t;
    tick();
  }
  assert.equal(calls, 6);
  // Late by 0, 0, 250, 0, 1 ms.
  assert.deepEqual(lag.stats(), { meanMs: 251 / 5, p50Ms: 0, p99Ms: 250, maxMs: 250 });
  lag.reset();
  assert.equal(lag.stats().maxMs, 0);
  now = 560;
  tick();
  assert.equal(lag.stats().maxMs, 9, 'the period continues across a reset');
});

test('past the samples kept, mean and max stay exact', () => {
  const lag = new LoopLag(() => 0);
  for (let i = 0; i < 10_000; i++) lag.record(i === 3 ? 1000 : 1);
  const s = lag.stats();
  assert.equal(s.maxMs, 1000);
  assert.equal(s.meanMs, (9_999 + 1000) / 10_000);
  assert.equal(s.p50Ms, 1);
});
