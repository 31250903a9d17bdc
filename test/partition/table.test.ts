import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assignOwners } from '../../src/partition/assign.ts';
import { loadXxh64 } from '../../src/partition/hash.ts';
import {
  checkTable,
  decodeTable,
  DEFAULT_PARTITIONS,
  encodeTable,
  summarize,
  TableDecodeError,
  type PartitionTable,
} from '../../src/partition/table.ts';
import { prng, randomGroups, type Prng } from './prng.ts';

const h64 = await loadXxh64();

function randomTable(rng: Prng, groupCount: number, partitions: number): PartitionTable {
  const groups = randomGroups(rng, groupCount).sort((a, b) => a - b);
  const owner = Uint32Array.from({ length: partitions }, () => groups[rng.below(groupCount)] as number);
  return { epoch: rng.u32() * 2 ** 21 + rng.below(2 ** 21), partitions, loadFactor: (1000 + rng.below(2001)) / 1000, groups, owner };
}

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

test('golden encoding of a tiny table (the format other clients implement)', () => {
  const t: PartitionTable = { epoch: 7, partitions: 4, loadFactor: 1.25, groups: [3, 9], owner: Uint32Array.of(9, 3, 3, 9) };
  assert.equal(
    hex(encodeTable(t)),
    '01' + '00' + 'e204' + '04000000' + '0700000000000000' + '02000000' + '03000000' + '09000000' + '01000001',
  );
});

test('encode/decode round trip, 1- and 2-byte owner indices, extreme epochs', () => {
  const rng = prng(11);
  for (let i = 0; i < 200; i++) {
    const G = i % 10 === 0 ? 257 + rng.below(300) : 1 + rng.below(16);
    const t = randomTable(rng, G, 1 + rng.below(2048));
    if (i === 1) t.epoch = Number.MAX_SAFE_INTEGER;
    if (i === 2) t.epoch = 0;
    const back = decodeTable(encodeTable(t));
    assert.deepEqual(back, t);
  }
});

test('a default table for 16 groups is 1108 bytes (header 20 + ids 64 + one byte per partition)', () => {
  const groups = Array.from({ length: 16 }, (_, i) => i + 1);
  const owner = assignOwners(h64, { partitions: DEFAULT_PARTITIONS, groups });
  const bytes = encodeTable({ epoch: 1, partitions: DEFAULT_PARTITIONS, loadFactor: 1.25, groups, owner });
  assert.equal(bytes.length, 1108);
});

test('decode works on a view into a larger buffer', () => {
  const t = randomTable(prng(3), 5, 100);
  const enc = encodeTable(t);
  const big = new Uint8Array(enc.length + 13);
  big.set(enc, 7);
  assert.deepEqual(decodeTable(big.subarray(7, 7 + enc.length)), t);
});

test('decode rejects every truncation and any trailing byte', () => {
  const enc = encodeTable(randomTable(prng(5), 4, 64));
  for (let n = 0; n < enc.length; n++) assert.throws(() => decodeTable(enc.subarray(0, n)), TableDecodeError);
  const longer = new Uint8Array(enc.length + 1);
  longer.set(enc);
  assert.throws(() => decodeTable(longer), TableDecodeError);
});

test('decode rejects specific malformations', () => {
  const base = encodeTable({ epoch: 1, partitions: 2, loadFactor: 1.25, groups: [5, 6], owner: Uint32Array.of(5, 6) });
  const cases: Array<[string, (b: Uint8Array, dv: DataView) => void]> = [
    ['version', (b) => (b[0] = 2)],
    ['reserved', (b) => (b[1] = 1)],
    ['load factor < 1', (_, dv) => dv.setUint16(2, 999, true)],
    ['epoch > 2^53-1', (_, dv) => dv.setBigUint64(8, 1n << 53n, true)],
    ['zero groups', (_, dv) => dv.setUint32(16, 0, true)],
    ['descending ids', (_, dv) => dv.setUint32(20, 7, true)],
    ['duplicate ids', (_, dv) => dv.setUint32(20, 6, true)],
    ['owner index out of range', (b) => (b[28] = 2)],
    ['huge P in a short buffer', (_, dv) => dv.setUint32(4, 0xffffffff, true)],
  ];
  for (const [why, mutate] of cases) {
    const b = base.slice();
    mutate(b, new DataView(b.buffer));
    assert.throws(() => decodeTable(b), TableDecodeError, why);
  }
  // P = 0 needs a consistent length to get past the length check.
  const p0 = base.slice(0, 28);
  new DataView(p0.buffer).setUint32(4, 0, true);
  assert.throws(() => decodeTable(p0), TableDecodeError, 'P = 0');
});

test('random byte mutations either throw TableDecodeError or decode to a valid table that re-encodes identically', () => {
  const rng = prng(99);
  const enc = encodeTable(randomTable(rng, 6, 50));
  let accepted = 0;
  for (let i = 0; i < 5000; i++) {
    const b = enc.slice();
    for (let k = 1 + rng.below(3); k > 0; k--) b[rng.below(b.length)] = rng.below(256);
    try {
      const t = decodeTable(b);
      checkTable(t);
      assert.deepEqual(encodeTable(t), b);
      accepted++;
    } catch (err) {
      if (!(err instanceof TableDecodeError)) throw err;
    }
  }
  assert.ok(accepted > 0, 'some mutations (e.g. of owner bytes) are valid tables');
});

test('encode refuses malformed tables', () => {
  const ok: PartitionTable = { epoch: 1, partitions: 2, loadFactor: 1.25, groups: [1, 2], owner: Uint32Array.of(1, 2) };
  const bad: Array<[string, Partial<PartitionTable>]> = [
    ['owner not a member', { owner: Uint32Array.of(1, 3) }],
    ['owner length', { owner: Uint32Array.of(1) }],
    ['unsorted groups', { groups: [2, 1] }],
    ['no groups', { groups: [], owner: new Uint32Array(2) }],
    ['negative epoch', { epoch: -1 }],
    ['fractional epoch', { epoch: 1.5 }],
    ['load factor below 1', { loadFactor: 0.9 }],
    ['load factor finer than 1/1000', { loadFactor: 1.2345 }],
  ];
  for (const [why, patch] of bad) assert.throws(() => encodeTable({ ...ok, ...patch }), RangeError, why);
});

test('summarize counts partitions per group, including groups that own none', () => {
  const t: PartitionTable = { epoch: 1, partitions: 5, loadFactor: 1.25, groups: [2, 4, 8], owner: Uint32Array.of(4, 2, 4, 4, 2) };
  assert.deepEqual(summarize(t), [
    { group: 2, partitions: 2 },
    { group: 4, partitions: 3 },
    { group: 8, partitions: 0 },
  ]);
});
