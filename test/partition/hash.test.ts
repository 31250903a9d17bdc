import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPartitioner, loadXxh64, MAX_PARTITIONS } from '../../src/partition/hash.ts';
import { prng } from './prng.ts';

const utf8 = new TextEncoder();

// Reference xxh64 values, seed 0 (xxHash's own sanity values); any client must reproduce them.
// Columns: input, xxh64, partition for P = 1024, partition for P = 1000.
const VECTORS: Array<[string, bigint, number, number]> = [
  ['', 0xef46db3751d8e999n, 409, 921],
  ['a', 0xd24ec4f1a98c6e5bn, 603, 955],
  ['abc', 0x44bc2cf5ad770999n, 409, 249],
  ['0123456789abcdef', 0x5c5b90c34e376d0bn, 267, 515],
  // > 32 bytes: exercises xxh64's four-lane loop, not just the tail.
  ['The quick brown fox jumps over the lazy dog', 0x0b242d361fda71bcn, 444, 476],
];

test('xxh64 matches reference vectors and returns an unsigned bigint', async () => {
  const h64 = await loadXxh64();
  for (const [input, want] of VECTORS) {
    const got = h64(utf8.encode(input));
    assert.equal(typeof got, 'bigint');
    assert.equal(got, want, `xxh64(${JSON.stringify(input)})`);
  }
});

test('partitionOf = xxh64 mod P, for power-of-two and other P', async () => {
  const p1024 = await createPartitioner(1024);
  const p1000 = await createPartitioner(1000);
  for (const [input, , want1024, want1000] of VECTORS) {
    assert.equal(p1024.partitionOf(utf8.encode(input)), want1024, `P=1024 ${JSON.stringify(input)}`);
    assert.equal(p1000.partitionOf(utf8.encode(input)), want1000, `P=1000 ${JSON.stringify(input)}`);
  }
});

test('partitionsOf agrees with partitionOf on random keys, into a fresh or a given buffer', async () => {
  const rng = prng(7);
  const keys = Array.from({ length: 500 }, () => Uint8Array.from({ length: rng.below(70) }, () => rng.below(256)));
  for (const P of [1, 3, 1000, 1024, MAX_PARTITIONS]) {
    const part = await createPartitioner(P);
    const single = keys.map((k) => part.partitionOf(k));
    assert.ok(single.every((p) => Number.isInteger(p) && p >= 0 && p < P));
    assert.deepEqual([...part.partitionsOf(keys)], single);

    const out = new Uint32Array(keys.length + 10);
    const view = part.partitionsOf(keys, out);
    assert.equal(view.length, keys.length);
    assert.equal(view.buffer, out.buffer, 'writes into the caller buffer');
    assert.deepEqual([...view], single);
  }
});

test('partitionsOf rejects a short out buffer; empty batch is fine', async () => {
  const part = await createPartitioner(1024);
  assert.throws(() => part.partitionsOf([new Uint8Array(1), new Uint8Array(2)], new Uint32Array(1)), RangeError);
  assert.equal(part.partitionsOf([]).length, 0);
});

test('partitionOf hashes the bytes, not the view: offsets into a larger buffer work', async () => {
  const part = await createPartitioner(1024);
  const big = utf8.encode('xxabcxx');
  assert.equal(part.partitionOf(big.subarray(2, 5)), 409);
});

test('createPartitioner rejects bad partition counts', async () => {
  for (const bad of [0, -1, 1.5, NaN, MAX_PARTITIONS + 1]) {
    await assert.rejects(createPartitioner(bad), RangeError, String(bad));
  }
});
