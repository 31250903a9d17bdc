// The write-ahead log: what a reopen reads back after clean closes, torn tails, stale bytes of an
// earlier life, segment rotation and release, damage, and SIGKILL under load.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { StorageCorruptionError } from '../../src/storage/errors.ts';
import { openFileWal } from '../../src/storage/wal.ts';
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
    assert.deepEqual(openFileWal(dir, { after: 7 }).records.map((r) => r.seq), [42]);
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
      (e: unknown) => e instanceof StorageCorruptionError && /checksum at byte 18, but record 3 at byte 36 after it is intact: damage, not a torn write/.test(e.message),
    );
    assert.deepEqual(fs.readFileSync(path), bytes, 'nothing cut: the evidence stays');
    // The store holds every record from r3 on (a checkpoint after them, say): nothing is lost by
    // cutting, so the log opens, as after a torn write.
    const held = openFileWal(dir, { after: 5 });
    assert.deepEqual(held.records, []);
    await held.wal.close();
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
    const reopenedFirst = (): number => openFileWal(dir, { segmentBytes: 256 }).records[0]!.seq;
    assert.ok(reopenedFirst() <= 21, 'every record after the released point is kept');
    wal.release(1_000); // everything: the segment being written stays
    assert.deepEqual(segmentsOf(dir), [before.at(-1)]);
    await wal.close();
    const last = openFileWal(dir, { segmentBytes: 256 });
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
