import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from './prng.ts';
import { EventQueue } from './queue.ts';

test('the PRNG is a pure function of its seed', () => {
  const a = new Rng(42);
  const b = new Rng(42);
  const xs = Array.from({ length: 1000 }, () => a.u32());
  assert.deepEqual(xs, Array.from({ length: 1000 }, () => b.u32()));
  assert.notDeepEqual(xs.slice(0, 10), Array.from({ length: 10 }, () => new Rng(43).u32()));
});

test('the PRNG stays in range and covers it', () => {
  const r = new Rng(7);
  const seen = new Set<number>();
  for (let i = 0; i < 10_000; i++) {
    const f = r.float();
    assert.ok(f >= 0 && f < 1);
    const k = r.int(10);
    assert.ok(Number.isInteger(k) && k >= 0 && k < 10);
    seen.add(k);
  }
  assert.equal(seen.size, 10);
});

test('forks are independent of later draws of the parent', () => {
  const a = new Rng(5);
  const fa = a.fork();
  const b = new Rng(5);
  const fb = b.fork();
  b.u32(); // the parent moving on does not change the fork
  assert.deepEqual([fa.u32(), fa.u32()], [fb.u32(), fb.u32()]);
});

test('the event queue orders by time, then by insertion', () => {
  const q = new EventQueue();
  const out: string[] = [];
  q.push(2, () => out.push('c'));
  q.push(1, () => out.push('a'));
  q.push(2, () => out.push('d'));
  q.push(1, () => out.push('b'));
  q.push(0.5, () => out.push('z'));
  for (let e = q.pop(); e; e = q.pop()) e.run();
  assert.deepEqual(out, ['z', 'a', 'b', 'c', 'd']);
});
