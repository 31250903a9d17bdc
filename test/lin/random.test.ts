// Histories made from a real sequential execution, each operation's interval stretched at random
// around its moment of effect: always linearizable, whatever the overlap.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkHistory } from './check.ts';
import { isPending, type Operation } from './history.ts';
import { generate, type Shape } from './generate.ts';

// Concurrency per key is about 2 × spread / keys ops; real clients keep it near their count. (Around
// 40 concurrent ops on one key the search gets exponential, as for any checker of this kind.)
const shapes: Shape[] = [
  { ops: 200, keys: 1, spread: 2, pending: 0 },
  { ops: 300, keys: 2, spread: 8, pending: 0.05 },
  { ops: 500, keys: 1, spread: 10, pending: 0.02 },
  { ops: 3000, keys: 5, spread: 10, pending: 0.03 },
  { ops: 4000, keys: 2, spread: 4, pending: 0.1 },
];

test('random histories from a sequential execution are accepted', () => {
  for (const [n, shape] of shapes.entries()) {
    for (let seed = 1; seed <= 5; seed++) {
      const h = generate(seed * 100 + n, shape);
      const r = checkHistory(h);
      assert.equal(r.verdict, 'ok', `seed ${seed} shape ${JSON.stringify(shape)}: ${r.text}`);
    }
  }
});

test('a read of a never-written value is rejected in a large random history', () => {
  for (let seed = 1; seed <= 5; seed++) {
    const h = generate(seed, { ops: 2000, keys: 3, spread: 6, pending: 0.03 });
    const reads = h.filter((op) => op.op === 'get' && !isPending(op));
    const victim = reads[Math.floor(reads.length / 2)] as Operation;
    victim.output = 'never-written';
    const r = checkHistory(h);
    assert.equal(r.verdict, 'illegal', r.text);
    assert.equal(r.failure?.culprit, victim);
  }
});

test('a stale read is rejected in a large random history', () => {
  for (let seed = 1; seed <= 5; seed++) {
    const h = generate(seed + 50, { ops: 2000, keys: 3, spread: 6, pending: 0.03 });
    // A read returning the value of a put that a later completed put (both before the read) replaced.
    const done = h.filter((op) => !isPending(op));
    let planted = false;
    for (const g of done) {
      if (g.op !== 'get' || planted) continue;
      const puts = done.filter((p) => p.op === 'put' && p.key === g.key && (p.ret as number) < g.call);
      const old = puts.find((p) => puts.some((q) => q.call > (p.ret as number) && (q.ret as number) < g.call));
      if (old === undefined) continue;
      g.output = old.value as string;
      planted = true;
    }
    assert.ok(planted);
    const r = checkHistory(h);
    assert.equal(r.verdict, 'illegal', r.text);
  }
});
