// A Ready's log record round-trips its entries and hard state, across run boundaries.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Entry } from '../../src/raft/types.ts';
import { decodeReadyRecord, encodeReadyRecord, runsOf } from '../../src/storage/ready-record.ts';

const entry = (index: number, size: number): Entry => ({ index, term: 3, type: index % 5 === 0 ? 1 : 0, data: Buffer.alloc(size, index % 251) });
const plain = (es: Entry[]): unknown[] => es.map((e) => ({ ...e, data: Buffer.from(e.data).toString('hex') }));

describe('Ready record', () => {
  it('round-trips entries and hard state', () => {
    const entries = [entry(7, 10), entry(8, 0), entry(9, 300)];
    const hs = { term: 3, vote: 2, commit: 6 };
    const back = decodeReadyRecord(encodeReadyRecord(runsOf(entries), hs));
    assert.deepEqual(back.hardState, hs);
    assert.deepEqual(plain(back.entries), plain(entries));
  });

  it('holds a hard state alone, entries alone, and entries over several runs', () => {
    assert.deepEqual(decodeReadyRecord(encodeReadyRecord([], { term: 1, vote: 0, commit: 0 })), { entries: [], hardState: { term: 1, vote: 0, commit: 0 } });
    const many = Array.from({ length: 40 }, (_, i) => entry(100 + i, 4000)); // 160 KB: three runs of 64 KB
    const runs = runsOf(many);
    assert.ok(runs.length > 1);
    const back = decodeReadyRecord(encodeReadyRecord(runs, undefined));
    assert.equal(back.hardState, undefined);
    assert.deepEqual(plain(back.entries), plain(many));
  });

  it('refuses a payload that is not one', () => {
    const good = encodeReadyRecord(runsOf([entry(1, 20)]), undefined);
    assert.throws(() => decodeReadyRecord(good.subarray(0, good.length - 3)), /cut short/);
    const flipped = Buffer.from(good);
    flipped[20] = flipped[20]! ^ 1;
    assert.throws(() => decodeReadyRecord(flipped), /checksum/);
    assert.throws(() => decodeReadyRecord(Buffer.from([7])), /not a Ready record/);
  });
});
