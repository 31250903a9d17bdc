// The write-ahead log: what a reopen reads back after clean closes, torn tails, stale bytes of an
// earlier life, segment rotation and release, damage, and SIGKILL under load.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { StorageCorruptionError, StorageError } from '../../src/storage/errors.ts';
import { openFileWal } from '../../src/storage/wal.ts';
import { crc32 } from '../../src/storage/crc32.ts';
import { RECORD_HEADER_BYTES } from '../../src/storage/wal-codec.ts';
import { tempDir } from './helpers.ts';
import { reapOnExit } from '../support/processes.ts';
import { childArgs } from '../support/child-script.ts';

const CHILD = fileURLToPath(new URL('./wal-child.ts', import.meta.url));
const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
const fresh = (): string => {
  const d = tempDir('wal');
  dirs.push(d);
  return join(d, 'wal');
};
const text = (p: Uint8Array): string => Buffer.from(p).toString('utf8');
const segmentsOf = (dir: string): string[] => fs.readdirSync(dir).filter((n) => n.endsWith('.log')).sort();

async function appendAll(dir: string, payloads: string[], segmentBytes?: number): Promise<void> {
  const { wal } = openFileWal(dir, segmentBytes ? { segmentBytes } : {});
  await Promise.all(payloads.map((p) => wal.append(Buffer.from(p)).durable));
  await wal.close();
}

describe('write-ahead log', () => {
  it('reads back every record in order, and continues the sequence after a reopen', async () => {
    const dir = fresh();
    await appendAll(dir, ['a', 'bb', '', 'dddd']);
    const { wal, records } = openFileWal(dir);
    assert.deepEqual(records.map((r) => [r.seq, text(r.payload)]), [[1, 'a'], [2, 'bb'], [3, ''], [4, 'dddd']]);
    assert.equal(wal.lastSeq, 4);
    const { seq, durable } = wal.append(Buffer.from('e'));
    await durable;
    assert.equal(seq, 5);
    await wal.close();
    assert.deepEqual(openFileWal(dir).records.map((r) => r.seq), [1, 2, 3, 4, 5]);
  });

  it('starts after the given sequence number when it holds no segment', async () => {
    const dir = fresh();
    const { wal, records } = openFileWal(dir, { after: 41 });
    assert.equal(records.length, 0);
    assert.equal(wal.append(Buffer.from('x')).seq, 42);
    await wal.close();
    assert.deepEqual(openFileWal(dir, { after: 41 }).records.map((r) => r.seq), [42]);
    // A store holding less than the log's start: the records between are missing.
    assert.throws(() => openFileWal(dir, { after: 7 }), (e: unknown) => e instanceof StorageCorruptionError && /records 8 to 41 are missing/.test(e.message));
  });

  it('cuts a torn last record, truncates the file there, and writes on from the cut', async () => {
    const dir = fresh();
    await appendAll(dir, ['one', 'two', 'three']);
    const [seg] = segmentsOf(dir);
    const path = join(dir, seg!);
    const full = fs.statSync(path).size;
    fs.truncateSync(path, full - 2); // the last record lost its final bytes
    const { wal, records } = openFileWal(dir);
    assert.deepEqual(records.map((r) => text(r.payload)), ['one', 'two']);
    assert.equal(fs.statSync(path).size, 2 * RECORD_HEADER_BYTES + 6);
    assert.equal(wal.append(Buffer.from('THREE')).seq, 3);
    await wal.close();
    assert.deepEqual(openFileWal(dir).records.map((r) => text(r.payload)), ['one', 'two', 'THREE']);
  });

  it('never reads back records an earlier life wrote past a torn record', async () => {
    const dir = fresh();
    const r3 = 'r3'.padEnd(1500, '.'); // spans whole sectors
    await appendAll(dir, ['r1', 'r2', r3, 'r4']);
    const path = join(dir, segmentsOf(dir)[0]!);
    const bytes = fs.readFileSync(path);
    // A power loss wrote r4's block but not one of r3's (writeback out of order): zeros there.
    const r3Payload = 2 * (RECORD_HEADER_BYTES + 2) + RECORD_HEADER_BYTES;
    bytes.fill(0, 512, 1024);
    assert.ok(r3Payload < 512 && 1024 < r3Payload + r3.length);
    fs.writeFileSync(path, bytes);
    const first = openFileWal(dir);
    assert.deepEqual(first.records.map((r) => text(r.payload)), ['r1', 'r2']); // r4 is intact but follows the cut
    // The next life writes a record of r3's length: r4's old bytes would line up after it.
    await first.wal.append(Buffer.from(r3.toUpperCase())).durable;
    await first.wal.close();
    assert.deepEqual(openFileWal(dir).records.map((r) => text(r.payload)), ['r1', 'r2', r3.toUpperCase()]);
  });

  it('refuses to cut synced records after a damaged one in the newest segment (found in review)', async () => {
    const dir = fresh();
    await appendAll(dir, ['r1', 'r2', 'r3', 'r4', 'r5']);
    const path = join(dir, segmentsOf(dir)[0]!);
    const bytes = fs.readFileSync(path);
    const at = RECORD_HEADER_BYTES + 2 + RECORD_HEADER_BYTES; // r2's payload: one flipped bit
    bytes[at] = bytes[at]! ^ 0x04;
    fs.writeFileSync(path, bytes);
    assert.throws(
      () => openFileWal(dir),
      (e: unknown) => e instanceof StorageCorruptionError && /checksum at byte 26 \(record 2\), but record 3 at byte 52 after it is intact: damage, not a torn write/.test(e.message),
    );
    assert.deepEqual(fs.readFileSync(path), bytes, 'nothing cut: the evidence stays');
    // The store holds r2 (a checkpoint after it): it was synced, so its damage is corruption too
    // (before 2026-12-07 such a log opened, cut).
    assert.throws(() => openFileWal(dir, { after: 5 }), (e: unknown) => e instanceof StorageCorruptionError && /the store holds records through 5, so the log had synced it/.test(e.message));
  });

  // An outside review: a record starting 2 bytes before a sector's end has zero high bytes in its
  // header there, which passed for an unwritten sector; a flipped bit in its payload was cut as a
  // torn write, and the synced records after it with it.
  it('a damaged record starting just before a sector end is damage, not a torn write', async () => {
    const dir = fresh();
    await appendAll(dir, ['a'.repeat(512 - 2 - RECORD_HEADER_BYTES), 'second record payload', 'third record payload']);
    const path = join(dir, segmentsOf(dir)[0]!);
    const bytes = fs.readFileSync(path);
    const second = 512 - 2; // record 1 fills [0, 510)
    bytes[second + RECORD_HEADER_BYTES + 3] = bytes[second + RECORD_HEADER_BYTES + 3]! ^ 0x01;
    fs.writeFileSync(path, bytes);
    assert.throws(() => openFileWal(dir), (e: unknown) => e instanceof StorageCorruptionError && /damage, not a torn write/.test(e.message));
    assert.deepEqual(fs.readFileSync(path), bytes, 'nothing cut');
  });

  it('rotates segments, reads across them, and deletes closed segments once released', async () => {
    const dir = fresh();
    const payloads = Array.from({ length: 40 }, (_, i) => `payload-${i}`.padEnd(50, '.'));
    await appendAll(dir, payloads, 256);
    const before = segmentsOf(dir);
    assert.ok(before.length >= 10, `${before.length} segments`);
    const { wal, records } = openFileWal(dir, { segmentBytes: 256 });
    assert.deepEqual(records.map((r) => text(r.payload)), payloads);
    wal.release(20);
    const kept = segmentsOf(dir);
    assert.ok(kept.length < before.length && kept.length > 1);
    const reopenedFirst = (): number => openFileWal(dir, { segmentBytes: 256, after: 20 }).records[0]!.seq;
    assert.ok(reopenedFirst() <= 21, 'every record after the released point is kept');
    wal.release(1_000); // everything: the segment being written stays
    assert.deepEqual(segmentsOf(dir), [before.at(-1)]);
    await wal.close();
    const last = openFileWal(dir, { segmentBytes: 256, after: 40 });
    assert.equal(last.records.at(-1)!.seq, 40);
    assert.equal(last.wal.append(Buffer.from('more')).seq, 41);
    await last.wal.close();
  });

  it('reports damage in a closed segment and a missing segment as corruption', async () => {
    const dir = fresh();
    await appendAll(dir, Array.from({ length: 30 }, (_, i) => `p${i}`.padEnd(40, '-')), 200);
    const segs = segmentsOf(dir);
    const middle = join(dir, segs[1]!);
    const damaged = fs.readFileSync(middle);
    damaged[RECORD_HEADER_BYTES + 3] = damaged[RECORD_HEADER_BYTES + 3]! ^ 1;
    fs.writeFileSync(middle, damaged);
    assert.throws(() => openFileWal(dir), (e: unknown) => e instanceof StorageCorruptionError && /checksum/.test(e.message));
    fs.rmSync(middle);
    assert.throws(() => openFileWal(dir), (e: unknown) => e instanceof StorageCorruptionError && /previous one ends/.test(e.message));
  });

  it('makes a new log directory durable in its parent before anything is written to it', async (t) => {
    const dir = fresh();
    const opened: string[] = [];
    const openSync = fs.openSync;
    t.mock.method(fs, 'openSync', (path: fs.PathLike, ...rest: unknown[]) => {
      opened.push(String(path));
      return (openSync as (...a: unknown[]) => number)(path, ...rest);
    });
    const { wal } = openFileWal(dir);
    t.mock.restoreAll();
    // syncDir opens a directory to fsync it: the parent of the new wal/ is among them, first.
    const parent = join(dir, '..');
    assert.ok(opened.includes(parent), `the parent was synced (opened: ${opened.join(', ')})`);
    assert.ok(opened.indexOf(parent) < opened.findIndex((p) => p.endsWith('.log')), 'before the first segment exists');
    await wal.close();
    // Opening an existing log syncs nothing above it.
    opened.length = 0;
    t.mock.method(fs, 'openSync', (path: fs.PathLike, ...rest: unknown[]) => {
      opened.push(String(path));
      return (openSync as (...a: unknown[]) => number)(path, ...rest);
    });
    const again = openFileWal(dir);
    t.mock.restoreAll();
    assert.ok(!opened.includes(parent));
    await again.wal.close();
  });

  it('a segment that cannot be created fails the append, and close() then closes no other file', async (t) => {
    const dir = fresh();
    const { wal } = openFileWal(dir, { segmentBytes: 64 });
    await wal.append(Buffer.alloc(80, 1)).durable; // past the segment size: the next append rotates
    const openSync = fs.openSync;
    t.mock.method(fs, 'openSync', (path: fs.PathLike, ...rest: unknown[]) => {
      if (String(path).endsWith('.log')) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      return (openSync as (...a: unknown[]) => number)(path, ...rest);
    });
    assert.throws(() => wal.append(Buffer.from('next')), /ENOSPC/);
    t.mock.restoreAll();
    // The closed segment's descriptor number goes to the next file this process opens.
    const other = join(dir, '..', 'other-file');
    const fd = fs.openSync(other, 'w');
    await wal.close();
    assert.doesNotThrow(() => fs.fstatSync(fd), 'the other file is still open');
    fs.closeSync(fd);
  });

  it('keeps every record reported durable across SIGKILL under load', async () => {
    const dir = fresh();
    let lastSeen = 0;
    for (let round = 0; round < 8; round++) {
      const child = spawn(process.execPath, [...childArgs(CHILD), dir, '4096'], { stdio: ['ignore', 'pipe', 'inherit'] });
      reapOnExit(child);
      const acked: number[] = [];
      const lines = createInterface({ input: child.stdout! });
      lines.on('line', (l) => acked.push(Number(l)));
      await new Promise<void>((resolve) => {
        const kill = (): void => {
          child.kill('SIGKILL');
          resolve();
        };
        // Kill once it has made some progress, at a moment that varies by round.
        const check = setInterval(() => {
          if (acked.length > 50 + round * 37) {
            clearInterval(check);
            setTimeout(kill, round * 3);
          }
        }, 2);
      });
      await new Promise((r) => child.once('exit', r));
      const { wal, records } = openFileWal(dir, { segmentBytes: 4096 });
      const seqs = records.map((r) => r.seq);
      seqs.forEach((s, i) => assert.equal(s, seqs[0]! + i, 'contiguous'));
      const durable = Math.max(lastSeen, ...acked);
      assert.ok(wal.lastSeq >= durable, `round ${round}: record ${durable} was reported durable, the log ends at ${wal.lastSeq}`);
      for (const r of records) assert.equal(text(r.payload), `record ${r.seq} `.repeat(1 + (r.seq % 7)));
      lastSeen = wal.lastSeq;
      await wal.close();
    }
  });
});

// Gap (a) of docs/storage.md: a record whose payload holds a whole aligned sector of zeros passed
// for a torn write when a bit flipped elsewhere in it, and was cut with the synced records after
// it. Torn now means caught by a crash before its sync returned; records say what was synced.
describe('write-ahead log: a torn write or damage', () => {
  const zeroed = (): Buffer => Buffer.concat([Buffer.alloc(300, 'a'), Buffer.alloc(1500), Buffer.alloc(300, 'z')]); // whole zero sectors inside

  async function appendEach(dir: string, payloads: Buffer[]): Promise<void> {
    const { wal } = openFileWal(dir);
    for (const p of payloads) await wal.append(p).durable; // one sync each: the next record knows it
    await wal.close();
  }

  it('a damaged record holding a zeroed sector, with a record written after its sync: corruption, nothing cut', async () => {
    const dir = fresh();
    await appendEach(dir, [Buffer.from('r1'), zeroed(), Buffer.from('r3'), Buffer.from('r4')]);
    const path = join(dir, segmentsOf(dir)[0]!);
    const bytes = fs.readFileSync(path);
    const r2 = bytes.indexOf('zzz'); // a flipped bit in r2's payload, past its zeros
    bytes[r2] = bytes[r2]! ^ 0x01;
    fs.writeFileSync(path, bytes);
    assert.throws(
      () => openFileWal(dir),
      (e: unknown) => e instanceof StorageCorruptionError && /checksum at byte \d+ \(record 2\), but record 3 at byte \d+ after it is intact and was written once records through 2 were synced: damage, not a torn write/.test(e.message),
    );
    assert.deepEqual(fs.readFileSync(path), bytes, 'nothing cut: the evidence stays');
  });

  it('the same damage in a record the store holds: corruption, even with nothing after it', async () => {
    const dir = fresh();
    await appendEach(dir, [Buffer.from('r1'), zeroed()]);
    const path = join(dir, segmentsOf(dir)[0]!);
    const bytes = fs.readFileSync(path);
    bytes[bytes.indexOf('zzz')]! ^= 0x01;
    fs.writeFileSync(path, bytes);
    assert.throws(() => openFileWal(dir, { after: 2 }), (e: unknown) => e instanceof StorageCorruptionError && /the store holds records through 2, so the log had synced it/.test(e.message));
    // Not held, nothing after it: the last write of a crash, cut as before.
    const { records, wal } = openFileWal(dir, { after: 1 });
    assert.deepEqual(records.map((r) => text(r.payload)), ['r1']);
    await wal.close();
  });

  it('a power loss in an unsynced batch still opens: a block left unwritten, later records of the batch cut with it', async () => {
    const dir = fresh();
    await appendEach(dir, [Buffer.from('r1')]);
    // r2..r4 in one batch, none synced when the next was written (appendAll: one turn, one sync).
    const { wal } = openFileWal(dir);
    await Promise.all([zeroed(), Buffer.from('r3'), Buffer.from('r4')].map((p) => wal.append(p).durable));
    await wal.close();
    const path = join(dir, segmentsOf(dir)[0]!);
    const bytes = fs.readFileSync(path);
    const block = Math.floor(bytes.indexOf('zzz') / 512) * 512; // r2's block holding its last bytes
    bytes.fill(0, block, block + 512); // writeback put r3, r4 on disk but not this block
    fs.writeFileSync(path, bytes);
    const opened = openFileWal(dir);
    assert.deepEqual(opened.records.map((r) => text(r.payload)), ['r1']);
    assert.equal(opened.wal.append(Buffer.from('R2')).seq, 2);
    await opened.wal.close();
    assert.deepEqual(openFileWal(dir).records.map((r) => text(r.payload)), ['r1', 'R2']);
  });

  it('a record an earlier life wrote and a kill left unsynced is synced at the next open before anything says so', async (t) => {
    const dir = fresh();
    await appendEach(dir, [Buffer.from('r1')]);
    const synced: string[] = [];
    const fdatasyncSync = fs.fdatasyncSync;
    t.mock.method(fs, 'fdatasyncSync', (fd: number) => {
      synced.push(fs.readlinkSync(`/proc/self/fd/${fd}`));
      fdatasyncSync(fd);
    });
    const { wal } = openFileWal(dir);
    t.mock.restoreAll();
    assert.ok(synced.some((p) => p.endsWith(segmentsOf(dir)[0]!)), `the newest segment was synced at open (${synced.join(', ')})`);
    await wal.append(Buffer.from('r2')).durable;
    await wal.close();
    // r2 says record 1 was synced: damage to r1 is now corruption, not a torn tail.
    const path = join(dir, segmentsOf(dir)[0]!);
    const bytes = fs.readFileSync(path);
    bytes[RECORD_HEADER_BYTES]! ^= 0x01;
    fs.writeFileSync(path, bytes);
    assert.throws(() => openFileWal(dir), (e: unknown) => e instanceof StorageCorruptionError && /written once records through 1 were synced/.test(e.message));
  });

  it('reads a log written in the earlier record format, and writes on after it', async () => {
    const dir = fresh();
    fs.mkdirSync(dir, { recursive: true });
    const legacy = (seq: number, payload: string): Buffer => {
      const p = Buffer.from(payload);
      const out = Buffer.alloc(16 + p.length);
      out.writeUInt32BE(p.length, 0);
      out.writeBigUInt64BE(BigInt(seq), 8);
      p.copy(out, 16);
      out.writeUInt32BE(crc32(out, crc32(out, 0, 8, 16), 16), 4);
      return out;
    };
    fs.writeFileSync(join(dir, 'wal-0000000000000001.log'), Buffer.concat([legacy(1, 'old one'), legacy(2, 'old two')]));
    const { wal, records } = openFileWal(dir);
    assert.deepEqual(records.map((r) => [r.seq, text(r.payload)]), [[1, 'old one'], [2, 'old two']]);
    await wal.append(Buffer.from('new three')).durable;
    await wal.close();
    assert.deepEqual(openFileWal(dir).records.map((r) => text(r.payload)), ['old one', 'old two', 'new three']);
  });
});

// Gap (b) of docs/storage.md: segments removed by hand were not detected unless a gap showed
// between two that remained. The chain from the store's checkpoint on must be whole.
describe('write-ahead log: the chain of segments from the checkpoint', () => {
  const payloads = Array.from({ length: 40 }, (_, i) => `payload-${i}`.padEnd(50, '.'));
  async function rotated(): Promise<{ dir: string; segs: string[]; firsts: number[] }> {
    const dir = fresh();
    await appendAll(dir, payloads, 256);
    const segs = segmentsOf(dir);
    assert.ok(segs.length >= 6, `${segs.length} segments`);
    return { dir, segs, firsts: segs.map((s) => Number.parseInt(s.slice(4, 20), 16)) };
  }

  it('a segment removed right after the checkpoint: refused, naming the records missing', async () => {
    const { dir, segs, firsts } = await rotated();
    const after = firsts[1]! + 1; // inside segment 1: segment 0 is held, segment 1 is not
    fs.rmSync(join(dir, segs[0]!)); // released by a compaction: fine
    fs.rmSync(join(dir, segs[1]!)); // removed by hand: records after the checkpoint with it
    assert.throws(
      () => openFileWal(dir, { after, segmentBytes: 256 }),
      (e: unknown) => e instanceof StorageCorruptionError && new RegExp(`records ${after + 1} to ${firsts[2]! - 1} are missing \\(a segment before ${segs[2]} was removed\\)`).test(e.message),
    );
  });

  it('segments the checkpoint holds, removed out of order by a compaction a crash cut short: opens, and they go', async () => {
    const { dir, segs, firsts } = await rotated();
    fs.rmSync(join(dir, segs[1]!)); // segment 0 stays, 1 is gone: both wholly before the checkpoint
    const after = firsts[2]! - 1;
    const { wal, records } = openFileWal(dir, { after, segmentBytes: 256 });
    assert.equal(records[0]!.seq, firsts[2]);
    assert.equal(records.at(-1)!.seq, 40);
    assert.deepEqual(segmentsOf(dir), segs.slice(2));
    await wal.close();
  });

  it('the newest segment removed: the sealed one before it names it', async () => {
    const { dir, segs, firsts } = await rotated();
    fs.rmSync(join(dir, segs.at(-1)!));
    assert.throws(
      () => openFileWal(dir, { after: firsts.at(-2)!, segmentBytes: 256 }),
      (e: unknown) => e instanceof StorageCorruptionError && e.message.includes(segs.at(-1)!) && new RegExp(`the log segment is missing: ${segs.at(-2)} was closed with records continuing at ${firsts.at(-1)} in it`).test(e.message),
    );
  });

  it('a log ending before the checkpoint: refused', async () => {
    const { dir, segs } = await rotated();
    const last = join(dir, segs.at(-1)!);
    fs.truncateSync(last, 0); // the newest segment's synced records lost
    assert.throws(() => openFileWal(dir, { after: 40, segmentBytes: 256 }), (e: unknown) => e instanceof StorageCorruptionError && /records \d+ to 40 are missing/.test(e.message));
  });

  it('a log directory emptied of its segments: refused once the log exists', async () => {
    const { dir, segs } = await rotated();
    for (const s of segs) fs.rmSync(join(dir, s));
    assert.throws(() => openFileWal(dir, { after: 12, existing: true }), (e: unknown) => e instanceof StorageCorruptionError && /the log holds no segment/.test(e.message));
    assert.deepEqual(segmentsOf(dir), [], 'nothing created in their place');
  });

  it('a crash while rotating (next segment made, seal or first record not yet written) opens and writes on', async () => {
    const { dir, segs, firsts } = await rotated();
    // The newest segment never got its first record, and the seal never reached the one before it.
    const prev = join(dir, segs.at(-2)!);
    fs.truncateSync(join(dir, segs.at(-1)!), 0);
    fs.truncateSync(prev, fs.statSync(prev).size - RECORD_HEADER_BYTES);
    const next = firsts.at(-1)!;
    let opened = openFileWal(dir, { segmentBytes: 256 });
    assert.equal(opened.records.at(-1)!.seq, next - 1);
    await opened.wal.close();
    // Nor did the new segment's directory entry.
    fs.rmSync(join(dir, segs.at(-1)!));
    opened = openFileWal(dir, { segmentBytes: 256 });
    assert.equal(opened.records.at(-1)!.seq, next - 1);
    await opened.wal.append(Buffer.from('on')).durable;
    await opened.wal.close();
    assert.equal(openFileWal(dir, { segmentBytes: 256 }).records.at(-1)!.seq, next);
  });
});

// Found by an outside test: these failed with Node's bare "EEXIST: file already exists, mkdir ..."
// and "EISDIR: illegal operation on a directory, read", the second naming no file at all.
describe('a log directory that is not what it should be', () => {
  it('wal/ that is a file: refused, saying so', () => {
    const dir = fresh();
    fs.writeFileSync(dir, '');
    assert.throws(() => openFileWal(dir), (e: unknown) => e instanceof StorageError && e.message.startsWith(`${dir} is not a directory`));
  });

  it('a segment that cannot be read: refused, naming it', async () => {
    const dir = fresh();
    await appendAll(dir, ['a']);
    const seg = join(dir, segmentsOf(dir)[0]!);
    fs.rmSync(seg);
    fs.mkdirSync(seg);
    assert.throws(() => openFileWal(dir), (e: unknown) => e instanceof StorageError && e.message.startsWith(`cannot read the log segment ${seg}: EISDIR`));
  });
});
