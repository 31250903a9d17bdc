// The load generator's HDR histogram: percentiles within its 3-significant-digit resolution,
// merging, and the compact form generator processes exchange.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Histogram, MAX_TRACKABLE } from '../../bench/load/histogram.ts';
import { rng } from '../../bench/load/keys.ts';

function exact(sorted: number[], p: number): number {
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

describe('Histogram', () => {
  it('reports percentiles within 0.1% of the exact values over six decades', () => {
    const r = rng(3);
    const h = new Histogram();
    const vals: number[] = [];
    for (let i = 0; i < 100_000; i++) {
      const v = Math.floor(10 ** (r() * 6)); // 1 µs .. 1 s, log-uniform
      vals.push(v);
      h.record(v);
    }
    vals.sort((a, b) => a - b);
    for (const p of [1, 50, 90, 99, 99.9, 99.99, 100]) {
      const want = exact(vals, p);
      const got = h.percentile(p);
      assert.ok(got >= want && got <= want * 1.001 + 1, `p${p}: got ${got}, exact ${want}`);
    }
    assert.equal(h.max, vals.at(-1));
    assert.equal(h.min, vals[0]);
    assert.equal(h.total, 100_000);
  });

  it('is exact below 2048 µs and clamps what it cannot track', () => {
    const h = new Histogram();
    for (let v = 0; v < 2048; v++) h.record(v);
    assert.equal(h.percentile(50), 1023);
    h.record(-5);
    h.record(1e12);
    assert.equal(h.max, MAX_TRACKABLE);
    assert.equal(h.min, 0);
  });

  it('merges and round-trips through its compact form', () => {
    const a = new Histogram();
    const b = new Histogram();
    for (let i = 1; i <= 1000; i++) (i % 2 ? a : b).record(i * 10);
    const merged = Histogram.fromJSON(JSON.parse(JSON.stringify(a.toJSON())));
    merged.add(Histogram.fromJSON(b.toJSON()));
    assert.equal(merged.total, 1000);
    assert.equal(merged.min, 10);
    assert.equal(merged.max, 10_000);
    assert.ok(Math.abs(merged.percentile(50) - 5000) <= 5);
    assert.ok(Math.abs(merged.mean - 5005) < 1);
    assert.equal(new Histogram().percentile(99), 0);
  });
});
