import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import zlib from 'node:zlib';
import { describe, it } from 'node:test';
import { readU64, writeU64 } from '../../src/storage/bytes.ts';
import { crc32 } from '../../src/storage/crc32.ts';
import { decodeRun, encodeRuns, RUN_BYTES } from '../../src/storage/log-codec.ts';
import {
  decodeFormat,
  decodeGeneration,
  decodeHardState,
  decodeIndex,
  decodeSnapshotMeta,
  decodeStage,
  encodeFormat,
  encodeGeneration,
  encodeHardState,
  encodeIndex,
  encodeSnapshotMeta,
  encodeStage,
} from '../../src/storage/records.ts';
import { seal, unseal } from '../../src/storage/sealed.ts';
import { decodeSession, encodeSession } from '../../src/storage/session-codec.ts';
import { decodeChunk, encodeChunk } from '../../src/storage/snapshot-image.ts';
import type { Entry } from '../../src/raft/types.ts';

describe('crc32', () => {
  it('matches zlib on random inputs, whole and chained', () => {
    for (let n = 0; n < 300; n++) {
      const buf = randomBytes(n);
      assert.equal(crc32(buf), zlib.crc32(buf));
      const cut = Math.floor(n / 3);
      assert.equal(crc32(buf.subarray(cut), crc32(buf.subarray(0, cut))), zlib.crc32(buf));
      assert.equal(crc32(buf, 0, cut), zlib.crc32(buf.subarray(cut)));
    }
    assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926); // the standard check value
  });
});

describe('u64', () => {
  it('round-trips across the 32-bit boundary and keeps numeric order bytewise', () => {
    const values = [0, 1, 255, 256, 65535, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 40 + 7, Number.MAX_SAFE_INTEGER];
    const bufs = values.map((v) => {
      const b = Buffer.alloc(8);
      writeU64(b, 0, v);
      assert.equal(readU64(b, 0), v);
      return b;
    });
    for (let i = 1; i < bufs.length; i++) assert.ok(Buffer.compare(bufs[i - 1]!, bufs[i]!) < 0);
  });
});

describe('sealed values', () => {
  it('detects any single flipped bit and a value moved to another key', () => {
    const key = Buffer.from('key');
    const stored = seal(key, Buffer.from('some value'));
    assert.deepEqual(Buffer.from(unseal(key, stored)!), Buffer.from('some value'));
    for (let bit = 0; bit < stored.length * 8; bit++) {
      const bad = Buffer.from(stored);
      bad[bit >> 3]! ^= 1 << (bit & 7);
      assert.equal(unseal(key, bad), undefined, `bit ${bit}`);
    }
    assert.equal(unseal(Buffer.from('other'), stored), undefined);
    assert.equal(unseal(key, Buffer.alloc(3)), undefined);
  });
});

describe('log runs', () => {
  const view = (es: Entry[]) => es.map((e) => ({ ...e, data: Buffer.from(e.data) }));
  const encode = (batch: Entry[]): [Buffer, Uint8Array][] => {
    const runs: [Buffer, Uint8Array][] = [];
    encodeRuns(batch, (k, v) => runs.push([Buffer.from(k), v]));
    return runs;
  };

  it('round-trip, with empty, conf and large entries, and split at RUN_BYTES', () => {
    const batch: Entry[] = [
      { index: 2 ** 33, term: 1, type: 0, data: new Uint8Array(0) },
      { index: 2 ** 33 + 1, term: 1, type: 1, data: Buffer.from('conf') },
      { index: 2 ** 33 + 2, term: 2 ** 40, type: 0, data: randomBytes(70_000) },
      ...Array.from({ length: 2000 }, (_, i): Entry => ({ index: 2 ** 33 + 3 + i, term: 2 ** 40, type: 0, data: randomBytes(100) })),
    ];
    const runs = encode(batch);
    assert.ok(runs.length >= 4);
    for (const [, v] of runs) assert.ok(v.length <= RUN_BYTES || v.length > 70_000);
    const decoded = runs.flatMap(([k, v]) => {
      const { entries, bad } = decodeRun(k, v);
      assert.equal(bad, undefined);
      assert.equal(readU64(k, 0), entries[0]!.index);
      return entries;
    });
    assert.deepEqual(view(decoded), view(batch));
  });

  it('name the first damaged entry: any flipped bit, a run cut short, a run under another key', () => {
    const batch = Array.from({ length: 5 }, (_, i): Entry => ({ index: 10 + i, term: 3, type: 0, data: Buffer.from(`entry ${i}`) }));
    const [[key, run]] = encode(batch) as [[Buffer, Uint8Array]];
    const perEntry = run.length / 5;
    for (let bit = 0; bit < run.length * 8; bit++) {
      const bad = Buffer.from(run);
      bad[bit >> 3]! ^= 1 << (bit & 7);
      const r = decodeRun(key, bad);
      assert.ok(r.bad, `bit ${bit}`);
      // the entries before the damaged one still decode
      assert.equal(r.entries.length, Math.floor(bit / 8 / perEntry), `bit ${bit}`);
      assert.equal(r.bad.index, 10 + r.entries.length);
    }
    assert.deepEqual(decodeRun(key, run.subarray(0, run.length - 3)).bad, { index: 14, detail: 'the entry is cut short' });
    const moved = Buffer.from(key);
    moved[7] = 11;
    assert.deepEqual(decodeRun(moved, run).bad, { index: 11, detail: 'the entry fails its checksum' });
    assert.ok(decodeRun(key.subarray(0, 4), run).bad);
  });
});

describe('raft records', () => {
  it('round-trip', () => {
    const meta = { index: 2 ** 35, term: 9, conf: { voters: [1, 2, 3], learners: [4, 2 ** 40] } };
    assert.deepEqual(decodeHardState(encodeHardState({ term: 2 ** 34, vote: 3, commit: 77 })), { term: 2 ** 34, vote: 3, commit: 77 });
    assert.deepEqual(decodeSnapshotMeta(encodeSnapshotMeta(meta)), meta);
    assert.deepEqual(decodeStage(encodeStage({ meta, nextSeq: 12, complete: true })), { meta, nextSeq: 12, complete: true });
    assert.equal(decodeIndex(encodeIndex(123456789012)), 123456789012);
    assert.equal(decodeGeneration(encodeGeneration(1)), 1);
    const id = randomBytes(16);
    const f = decodeFormat(encodeFormat(id));
    assert.equal(f.version, 2);
    assert.deepEqual(Buffer.from(f.id), id);
    assert.throws(() => decodeHardState(encodeHardState({ term: 1, vote: 0, commit: 0 }).subarray(0, 20)));
    assert.throws(() => decodeGeneration(Buffer.of(2)));
  });

  it('sessions keep every result kind', () => {
    const s = {
      seq: 2 ** 45,
      time: 1_700_000_000_000,
      results: [
        { status: 'ok' as const },
        { status: 'cas-failed' as const, current: null },
        { status: 'cas-failed' as const, current: Buffer.from('cur') },
        { status: 'rejected' as const, reason: 'key: empty ✗' },
      ],
    };
    assert.deepEqual(decodeSession(encodeSession(s)), s);
  });
});

describe('snapshot chunks', () => {
  it('round-trip and reject damage', () => {
    const records = [
      { table: 0, key: Buffer.from('m'), stored: Buffer.from('meta-value') },
      { table: 2, key: Buffer.from([0, 255]), stored: Buffer.alloc(0) },
    ];
    const data = encodeChunk(records);
    assert.deepEqual(
      decodeChunk(data).map((r) => ({ ...r, key: Buffer.from(r.key), stored: Buffer.from(r.stored) })),
      records,
    );
    assert.deepEqual(decodeChunk(encodeChunk([])), []);
    const bad = Buffer.from(data);
    bad[3]! ^= 1;
    assert.throws(() => decodeChunk(bad), /checksum/);
    assert.throws(() => decodeChunk(data.subarray(0, 3)), /checksum/);
  });
});
