// Key choice for the load generator: the zipfian generator matches its distribution (θ = 0.99),
// stays in range, spreads its hot keys; uniform is uniform; the key space has fixed-size keys.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KeySpace, rng, uniformKeys, zipfKeys, zipfTopProbability } from '../../bench/load/keys.ts';

describe('zipfKeys', () => {
  it('draws the hottest key with probability 1/zeta(n) and ranks in decreasing popularity', () => {
    const n = 1000;
    const draws = 200_000;
    const z = zipfKeys(n, 0.99, rng(1), 5);
    const counts = new Map<number, number>();
    for (let i = 0; i < draws; i++) {
      const k = z.next();
      assert.ok(k >= 0 && k < n && Number.isInteger(k));
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    const sorted = [...counts.values()].sort((a, b) => b - a);
    const top = sorted[0]! / draws;
    const want = zipfTopProbability(n, 0.99);
    assert.ok(Math.abs(top - want) < 0.01, `top ${top} vs ${want}`);
    // Rank 10 is about (1/11)^0.99 as popular as rank 0 under Zipf.
    const r10 = sorted[10]! / sorted[0]!;
    assert.ok(r10 > 0.06 && r10 < 0.12, `rank-10 ratio ${r10}`);
    // Scrambled: the hottest key is not key 0.
    const hottest = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]![0];
    assert.notEqual(hottest, 0);
  });

  it('is repeatable for a seed', () => {
    const a = zipfKeys(500, 0.99, rng(9));
    const b = zipfKeys(500, 0.99, rng(9));
    for (let i = 0; i < 100; i++) assert.equal(a.next(), b.next());
  });
});

describe('uniformKeys', () => {
  it('covers the range evenly', () => {
    const u = uniformKeys(10, rng(2));
    const c = new Array<number>(10).fill(0);
    for (let i = 0; i < 100_000; i++) c[u.next()]!++;
    for (const x of c) assert.ok(Math.abs(x - 10_000) < 500, String(c));
  });
});

describe('KeySpace', () => {
  it('lays out fixed-size keys and values', () => {
    const s = new KeySpace(1000, 16, 100);
    assert.equal(s.keys.toString('latin1', s.keyOffset(42), s.keyOffset(42) + 16), 'k000000000000042');
    assert.equal(s.keyViews()[999]!.toString(), 'k000000000000999');
    assert.equal(s.valueViews()[3]!.length, 100);
    assert.throws(() => new KeySpace(100_000, 5, 10), /too small/);
  });
});
