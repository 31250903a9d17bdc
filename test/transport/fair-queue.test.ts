import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FairQueue } from '../../src/transport/fair-queue.ts';

describe('fair queue', () => {
  it('hands out one item of each key in turn, each key in its own order', () => {
    const q = new FairQueue<string, string>();
    for (const x of ['a1', 'a2', 'a3', 'a4']) q.push('a', x, 10);
    q.push('b', 'b1', 1);
    q.push('c', 'c1', 1);
    q.push('c', 'c2', 1);
    assert.equal(q.bytes, 43);
    assert.equal(q.bytesOf('a'), 40);
    const out: string[] = [];
    q.take(
      (x) => out.push(x),
      () => out.length < 5,
    );
    assert.deepEqual(out, ['a1', 'b1', 'c1', 'a2', 'c2']);
    assert.equal(q.bytes, 20);
    assert.equal(q.bytesOf('b'), 0);
    // The turn goes on where it stopped; a key that comes back joins at the back.
    q.push('b', 'b2', 1);
    assert.deepEqual(q.clear(), ['a3', 'b2', 'a4']);
    assert.ok(q.isEmpty);
    assert.equal(q.bytes, 0);
  });
});
