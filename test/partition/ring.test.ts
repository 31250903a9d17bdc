import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadXxh64 } from '../../src/partition/hash.ts';
import { buildRing, hashString, partitionPoints, successor } from '../../src/partition/ring.ts';

const h64 = await loadXxh64();
const utf8 = new TextEncoder();

test('hashString = xxh64 of the UTF-8 bytes, for short and long strings', () => {
  for (const s of ['', '7#0', '4294967295#255', 'é#1', 'x'.repeat(200)]) assert.equal(hashString(h64, s), h64(utf8.encode(s)), s);
});

test('partition points are evenly spaced at ⌊p·2^64/P⌋', () => {
  assert.deepEqual([...partitionPoints(4)], [0n, 1n << 62n, 1n << 63n, 3n << 62n]);
  const pts = partitionPoints(3);
  assert.deepEqual([...pts], [0n, (1n << 64n) / 3n, (2n << 64n) / 3n]);
});

test('ring: virtual nodes sorted by position, each group present V times, successor wraps', () => {
  const groups = [4, 9, 30];
  const ring = buildRing(h64, groups, 5);
  assert.equal(ring.points.length, 15);
  for (let i = 1; i < ring.points.length; i++) assert.ok((ring.points[i - 1] as bigint) <= (ring.points[i] as bigint));
  for (let g = 0; g < groups.length; g++) assert.equal(ring.group.filter((x) => x === g).length, 5);
  // The vnode at ring index k must be one of its group's five hashes.
  ring.points.forEach((pt, k) => {
    const id = groups[ring.group[k] as number] as number;
    assert.ok([0, 1, 2, 3, 4].some((i) => hashString(h64, `${id}#${i}`) === pt));
  });
  const first = ring.points[0] as bigint;
  const last = ring.points[14] as bigint;
  assert.equal(successor(ring, 0n), 0);
  assert.equal(successor(ring, first), 0);
  assert.equal(successor(ring, first + 1n), 1);
  assert.equal(successor(ring, last), 14);
  assert.equal(successor(ring, last + 1n), 0, 'past the last node wraps to the first');
});
