// Random histories made from a real sequential execution: each operation takes effect at one moment,
// and its call and return are stretched at random around that moment. Always linearizable.
import type { Operation } from './history.ts';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return ((z ^ (z >>> 16)) >>> 0) / 2 ** 32;
  };
}

export interface Shape {
  ops: number;
  keys: number;
  /** How far a call/return may stray from the moment of effect, in units of one operation. */
  spread: number;
  pending: number;
}

export function generate(seed: number, shape: Shape): Operation[] {
  const r = rng(seed);
  const state = new Map<string, string>();
  const history: Operation[] = [];
  for (let i = 0; i < shape.ops; i++) {
    const key = `k${Math.floor(r() * shape.keys)}`;
    const at = i * 10; // moment of effect
    const call = at - Math.floor(r() * shape.spread * 10);
    const ret = at + Math.floor(r() * shape.spread * 10);
    const pending = r() < shape.pending;
    const takesEffect = !pending || r() < 0.5;
    const cur = state.get(key) ?? null;
    const value = `v${i}`;
    const clientId = i % 7;
    const kind = r();
    let op: Operation;
    if (kind < 0.4) {
      op = { clientId, op: 'get', key, output: cur, call, ret };
    } else if (kind < 0.7) {
      op = { clientId, op: 'put', key, value, call, ret };
      if (takesEffect) state.set(key, value);
    } else if (kind < 0.8) {
      op = { clientId, op: 'delete', key, call, ret };
      if (takesEffect) state.delete(key);
    } else {
      const expected = r() < 0.6 ? cur : r() < 0.5 ? null : `v${Math.floor(r() * (i + 1))}`;
      const swaps = expected === cur;
      op = { clientId, op: 'cas', key, expected, value, output: swaps, call, ret };
      if (takesEffect && swaps) state.set(key, value);
    }
    if (pending) {
      op.ret = Infinity;
      delete op.output;
    }
    history.push(op);
  }
  return history;
}

