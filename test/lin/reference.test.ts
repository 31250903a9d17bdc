// The checker's shortcuts (pruning, inferred writes, forced reads, twin groups, dominance) against a
// brute-force search straight from the definition, on small random histories with repeated values
// and random outputs — linearizable or not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkHistory } from './check.ts';
import { isPending, type Operation } from './history.ts';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** Is there an order of all completed ops and some pending ones, respecting real time, that the register accepts? */
export function bruteForce(ops: readonly Operation[], start: string | null = null): boolean {
  const placed = new Array<boolean>(ops.length).fill(false);
  const must = ops.filter((op) => !isPending(op)).length;
  const go = (state: string | null, done: number): boolean => {
    if (done === must) return true;
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i] as Operation;
      if (placed[i]) continue;
      // Every unplaced completed op that returned before this one was called must come first.
      if (ops.some((o, j) => !placed[j] && !isPending(o) && (o.ret as number) < op.call)) continue;
      const pending = isPending(op);
      let next: string | null = state;
      if (op.op === 'get') {
        if (!pending && op.output !== state) continue;
      } else if (op.op === 'put') next = op.value ?? null;
      else if (op.op === 'delete') next = null;
      else {
        const swaps = state === (op.expected ?? null);
        if (!pending && swaps !== op.output) continue;
        if (swaps) next = op.value ?? null;
      }
      placed[i] = true;
      const ok = go(next, done + (pending ? 0 : 1));
      placed[i] = false;
      if (ok) return true;
    }
    return false;
  };
  return go(start, 0);
}

function randomHistory(r: () => number, n: number): Operation[] {
  const vals = ['a', 'b', 'c'];
  const pick = (): string => vals[Math.floor(r() * vals.length)] as string;
  const out: Operation[] = [];
  for (let i = 0; i < n; i++) {
    const call = Math.floor(r() * 20);
    const ret = r() < 0.2 ? Infinity : call + Math.floor(r() * 8);
    const k = r();
    const op: Operation =
      k < 0.4
        ? { clientId: i, op: 'get', key: 'x', output: r() < 0.25 ? null : pick(), call, ret }
        : k < 0.65
          ? { clientId: i, op: 'put', key: 'x', value: pick(), call, ret }
          : k < 0.75
            ? { clientId: i, op: 'delete', key: 'x', call, ret }
            : { clientId: i, op: 'cas', key: 'x', expected: r() < 0.3 ? null : pick(), value: pick(), output: r() < 0.5, call, ret };
    if (!Number.isFinite(ret)) delete op.output;
    out.push(op);
  }
  return out;
}

test('agrees with brute force on small random histories', () => {
  const r = rng(7);
  let illegal = 0;
  for (let i = 0; i < 3000; i++) {
    const h = randomHistory(r, 2 + Math.floor(r() * 6));
    const want = bruteForce(h);
    const got = checkHistory(h);
    assert.notEqual(got.verdict, 'unknown');
    assert.equal(got.verdict === 'ok', want, `history ${i}: ${JSON.stringify(h)}\n${got.text}`);
    if (!want) {
      illegal++;
      // The witness must itself be non-linearizable, from every state the cut-away ops could leave.
      const f = got.failure;
      assert.ok(f);
      const cut = h
        .filter((op) => !isPending(op))
        .sort((a, b) => (a.ret as number) - (b.ret as number))
        .slice(0, f.before);
      const starts = f.before === 0 ? [null] : [null, ...cut.filter((o) => o.value !== undefined).map((o) => o.value as string)];
      for (const s of starts) assert.equal(bruteForce(f.witness, s), false, `witness from ${s}: ${f.text}`);
    }
  }
  assert.ok(illegal > 300, 'the generator produces plenty of non-linearizable histories');
});

test('agrees with brute force when values are unique (the inferred-write path)', () => {
  const r = rng(11);
  for (let i = 0; i < 3000; i++) {
    const h = randomHistory(r, 2 + Math.floor(r() * 6));
    // Make written values unique, and let reads see one of them (or a stale/absent one).
    const written: string[] = [];
    h.forEach((op, j) => {
      if (op.op === 'put' || op.op === 'cas') {
        op.value = `v${j}`;
        written.push(op.value);
      }
    });
    for (const op of h) {
      if (op.op === 'get' && op.output !== undefined) op.output = r() < 0.2 ? null : (written[Math.floor(r() * written.length)] ?? null);
      if (op.op === 'cas') op.expected = r() < 0.3 ? null : (written[Math.floor(r() * written.length)] ?? null);
    }
    const want = bruteForce(h);
    const got = checkHistory(h);
    assert.equal(got.verdict === 'ok', want, `history ${i}: ${JSON.stringify(h)}\n${got.text}`);
  }
});
