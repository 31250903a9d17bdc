import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkHistory } from './check.ts';
import type { Operation } from './history.ts';

// Tiny builders: times are [call, ret]; ret omitted = never returned.
const put = (c: number, key: string, value: string, call: number, ret?: number): Operation => ({
  clientId: c, op: 'put', key, value, call, ret: ret ?? Infinity,
});
const del = (c: number, key: string, call: number, ret?: number): Operation => ({
  clientId: c, op: 'delete', key, call, ret: ret ?? Infinity,
});
const get = (c: number, key: string, output: string | null, call: number, ret: number): Operation => ({
  clientId: c, op: 'get', key, output, call, ret,
});
const cas = (c: number, key: string, expected: string | null, value: string, output: boolean | undefined, call: number, ret?: number): Operation => ({
  clientId: c, op: 'cas', key, expected, value, output, call, ret: ret ?? Infinity,
});

function accepts(history: Operation[]): void {
  const r = checkHistory(history);
  assert.equal(r.verdict, 'ok', r.text);
}

function rejects(history: Operation[], witnessSize?: number): void {
  const r = checkHistory(history);
  assert.equal(r.verdict, 'illegal', r.text);
  assert.ok(r.failure, 'a failure comes with a witness');
  if (witnessSize !== undefined) assert.equal(r.failure.witness.length, witnessSize, r.text);
}

test('empty and sequential histories are linearizable', () => {
  accepts([]);
  accepts([put(1, 'x', 'a', 0, 1), get(1, 'x', 'a', 2, 3), del(1, 'x', 4, 5), get(1, 'x', null, 6, 7)]);
  accepts([get(1, 'x', null, 0, 1)]);
});

test('concurrent operations may take effect in either order', () => {
  // Both reads overlap both writes, and see different orders of them — allowed: each read can be
  // placed between the writes.
  accepts([put(1, 'x', 'a', 0, 10), put(2, 'x', 'b', 0, 10), get(3, 'x', 'a', 1, 9), get(4, 'x', 'b', 1, 9)]);
  accepts([put(1, 'x', 'a', 0, 10), get(2, 'x', null, 1, 2), get(3, 'x', 'a', 3, 4)]);
  // Operations that touch (ret == call) count as concurrent.
  accepts([put(1, 'x', 'a', 0, 5), get(2, 'x', null, 5, 6)]);
});

test('pending operations may or may not have taken effect', () => {
  accepts([put(1, 'x', 'a', 0), get(2, 'x', 'a', 5, 6)]);
  accepts([put(1, 'x', 'a', 0), get(2, 'x', null, 5, 6)]);
  // ...but not before they were called.
  rejects([get(2, 'x', 'a', 0, 1), put(1, 'x', 'a', 2)]);
  // A pending write may take effect late, after later completed writes.
  accepts([put(1, 'x', 'a', 0), put(2, 'x', 'b', 1, 2), get(3, 'x', 'b', 3, 4), get(3, 'x', 'a', 5, 6)]);
  accepts([cas(1, 'x', null, 'a', undefined, 0), get(2, 'x', 'a', 3, 4)]);
  accepts([del(1, 'x', 3), put(2, 'x', 'a', 0, 1), get(2, 'x', null, 5, 6)]);
});

test('keys are independent', () => {
  accepts([put(1, 'x', 'a', 0, 1), put(1, 'y', 'b', 2, 3), get(2, 'x', 'a', 4, 5), get(2, 'y', 'b', 4, 5)]);
  const r = checkHistory([put(1, 'x', 'a', 0, 1), get(2, 'y', 'a', 2, 3)]);
  assert.equal(r.verdict, 'illegal');
  assert.equal(r.failure?.key, 'y');
});

test('rejects a stale read after a completed write', () => {
  // The witness needs only the overwrite and the read: whatever the state was, b then a is stale.
  rejects([put(1, 'x', 'a', 0, 1), put(1, 'x', 'b', 2, 3), get(2, 'x', 'a', 4, 5)], 2);
  rejects([put(1, 'x', 'a', 0, 1), get(2, 'x', null, 2, 3)], 2);
});

test('rejects a lost write', () => {
  // Acknowledged put of b, later reads show the older a.
  rejects([put(1, 'x', 'a', 0, 1), put(2, 'x', 'b', 2, 3), get(3, 'x', 'a', 10, 11), get(3, 'x', 'a', 12, 13)]);
  // A read saw b, a later read goes back to a: the two reads alone are the witness.
  rejects([put(1, 'x', 'a', 0, 1), put(2, 'x', 'b', 2, 20), get(3, 'x', 'b', 3, 4), get(3, 'x', 'a', 5, 6)], 2);
});

test('rejects CAS anomalies', () => {
  // Two CASes from the same state cannot both succeed (even if the put were only maybe applied).
  rejects([put(1, 'x', 'a', 0, 1), cas(2, 'x', 'a', 'b', true, 2, 10), cas(3, 'x', 'a', 'c', true, 2, 10)], 2);
  // A CAS that failed although the value matched and nobody else wrote.
  rejects([put(1, 'x', 'a', 0, 1), cas(2, 'x', 'a', 'b', false, 2, 3)], 2);
  // A CAS that succeeded from a state that never existed.
  rejects([put(1, 'x', 'a', 0, 1), cas(2, 'x', 'z', 'b', true, 2, 3)]);
  // A successful CAS whose write is then not visible.
  rejects([cas(1, 'x', null, 'a', true, 0, 1), get(2, 'x', null, 2, 3)], 2);
  // Fine: concurrent CASes, one wins, one fails; a failed CAS from absent.
  accepts([put(1, 'x', 'a', 0, 1), cas(2, 'x', 'a', 'b', true, 2, 10), cas(3, 'x', 'a', 'c', false, 2, 10), get(4, 'x', 'b', 11, 12)]);
  accepts([cas(1, 'x', 'a', 'b', false, 0, 1), get(1, 'x', null, 2, 3)]);
});

test('rejects a read of a value never written', () => {
  rejects([put(1, 'x', 'a', 0, 1), get(2, 'x', 'q', 2, 3)], 1);
});

test('rejects two reads observing concurrent writes in opposite orders', () => {
  // Reads 1 and 2 both finish after both writes; one saw a-then-b, the other b-then-a.
  const h = [
    put(1, 'x', 'a', 0, 10),
    put(2, 'x', 'b', 0, 10),
    get(3, 'x', 'a', 1, 2),
    get(3, 'x', 'b', 3, 4),
    get(4, 'x', 'b', 1, 2),
    get(4, 'x', 'a', 3, 4),
  ];
  rejects(h, 4);
});

test('the explanation names the key and marks the culprit', () => {
  const r = checkHistory([put(1, 'k', 'a', 0, 1), put(1, 'k', 'b', 2, 3), get(2, 'k', 'a', 4, 5), get(2, 'k', 'b', 6, 7)]);
  assert.equal(r.verdict, 'illegal');
  assert.match(r.text, /key "k"/);
  assert.match(r.text, /→ \[c2\] get k -> "a"/);
  assert.equal(r.failure?.culprit.op, 'get');
});

test('runs out of budget with unknown instead of hanging', () => {
  // Many concurrent writes and a read of an impossible value: the search must try every order.
  const h: Operation[] = [];
  for (let i = 0; i < 40; i++) h.push(put(i, 'x', `v${i}`, 0, 100));
  h.push(get(99, 'x', 'never', 0, 100), get(99, 'x', 'v1', 101, 102), get(98, 'x', 'v2', 101, 102));
  const r = checkHistory(h, { budget: 1000 });
  assert.equal(r.verdict, 'unknown', r.text);
});
