// One write-ahead log for every store of a process (src/storage/shared-log.ts): each store reads
// back exactly its own Readies after a crash, the log is dropped only behind every store's
// checkpoint, and a log of a replica's own left by an older build is taken over.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { StorageCorruptionError, StorageError } from '../../src/storage/errors.ts';
import { MemoryDisk, MemoryWalDisk, openMemoryStore, openStore } from '../../src/storage/index.ts';
import { encodeReadyRecord, runsOf } from '../../src/storage/ready-record.ts';
import { recordsOf, shareLog, wrapRecord } from '../../src/storage/shared-log.ts';
import { openFileWal, WAL_DIR } from '../../src/storage/wal.ts';
import { CONF, Hand, entries, hs, ready, tempDir } from './helpers.ts';

const text = (p: Uint8Array): string => Buffer.from(p).toString('utf8');
const NEVER = (): (() => void) => () => {}; // LMDB's checkpoint never runs: only the log holds the Readies

/** A process's memory disks, opened as a life of the process would: a shared log over them. */
function life(disk: MemoryDisk, logs: MemoryWalDisk, hand = new Hand()) {
  const env = disk.openShared(hand);
  const log = shareLog(logs.open('process', hand), env, 'process');
  const store = (name: string) => openMemoryStore(env(name), undefined, (after) => log.view(name, after), NEVER);
  return { hand, log, store };
}

describe('a log shared by the stores of a process', () => {
  it("gives each store back its own Readies after a crash, and drops the log once they are in LMDB", async () => {
    const disk = new MemoryDisk();
    const logs = new MemoryWalDisk();
    const first = life(disk, logs);
    const [a, c] = [first.store('g1'), first.store('g2')];
    a.load(CONF);
    c.load(CONF);
    await first.hand.syncAll();
    const persisted = [
      a.persist(ready({ entries: entries(1, 3, 1), hardState: hs(1, 2) })),
      c.persist(ready({ entries: entries(1, 1, 2), hardState: hs(2, 0) })),
    ];
    await first.hand.syncAll();
    await Promise.all(persisted);
    const synced = logs.records('process');
    assert.equal(synced.length, 2, 'both Readies went into the one log');
    assert.deepEqual(recordsOf('g1', synced).map((r) => r.seq), [1]);
    disk.crash();
    logs.crash();

    const second = life(disk, logs);
    assert.equal(logs.records('process').length, 0, 'replayed into LMDB at open, then released');
    const [ra, rc] = [second.store('g1').load(), second.store('g2').load()];
    assert.deepEqual(ra.entries.map((e) => e.index), [1, 2, 3]);
    assert.deepEqual(ra.hardState, hs(1, 2));
    assert.deepEqual(rc.entries.map((e) => [e.index, e.term]), [[1, 2]]);
  });

  it('drops records only before the oldest one some store has not released', async () => {
    const logs = new MemoryWalDisk();
    const hand = new Hand();
    const log = shareLog(logs.open('process', hand), () => undefined, 'process');
    const a = log.view('a', 0).wal;
    const c = log.view('c', 0).wal;
    a.append(Buffer.from('a1'));
    c.append(Buffer.from('c1'));
    a.append(Buffer.from('a2'));
    await hand.syncAll();
    const shared = (): number[] => logs.records('process').map((r) => r.seq);
    assert.deepEqual(shared(), [1, 2, 3]);
    a.release(2);
    assert.deepEqual(shared(), [2, 3], "c's record pins itself and everything after it");
    c.release(1);
    assert.deepEqual(shared(), [], 'every store has released');
  });

  it('hands a store reopened in the same life the records it had not released', () => {
    const log = shareLog(new MemoryWalDisk().open('process', new Hand()), () => undefined, 'process');
    const { wal } = log.view('a', 4);
    assert.deepEqual([wal.append(Buffer.from('x')).seq, wal.append(Buffer.from('y')).seq], [5, 6]);
    assert.throws(() => log.view('a', 4), StorageError);
    wal.release(5);
    void wal.close();
    const again = log.view('a', 4);
    assert.deepEqual(again.records.map((r) => [r.seq, text(r.payload)]), [[6, 'y']]);
    assert.equal(again.wal.append(Buffer.from('z')).seq, 7);
  });

  it('refuses a log that names a store the environment lacks, or holds no store record', async () => {
    const hand = new Hand();
    const named = new MemoryWalDisk();
    named.open('process', hand).wal.append(wrapRecord('gone', 1, Buffer.from('r')));
    const bad = new MemoryWalDisk();
    bad.open('process', hand).wal.append(Uint8Array.of(200, 1, 2));
    await hand.syncAll();
    const env = new MemoryDisk().openShared(hand);
    assert.throws(() => shareLog(named.open('process', hand), () => undefined, 'process'), (e: unknown) => e instanceof StorageCorruptionError && /store gone/.test(e.message));
    assert.throws(() => shareLog(bad.open('process', hand), env, 'process'), (e: unknown) => e instanceof StorageCorruptionError && /too short/.test(e.message));
  });
});

describe('the shared log on disk', () => {
  const dirs: string[] = [];
  after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
  const fresh = (): string => {
    const d = tempDir('shared-log');
    dirs.push(d);
    return d;
  };

  it("keeps every hosted store's Readies in one log in the environment's directory", async () => {
    const dir = fresh();
    const shared = join(dir, 'shared');
    const open = (n: number) => openStore({ path: join(dir, `r${n}`), sharedData: shared, checkpointMs: 60_000 });
    const [a, c] = [await open(1), await open(2)];
    a.load(CONF);
    c.load(CONF);
    await Promise.all([a.persist(ready({ entries: entries(1, 2, 1), hardState: hs(1, 1) })), c.persist(ready({ entries: entries(1, 4, 3), hardState: hs(3, 2) }))]);
    assert.equal(fs.existsSync(join(dir, 'r1', WAL_DIR)), false, 'no log of its own');
    const { records } = openFileWal(join(shared, WAL_DIR));
    assert.equal(records.length, 2, "both stores' Readies, in the one log");
    await Promise.all([a.close(), c.close()]);
    const [ra, rc] = [await open(1), await open(2)];
    assert.deepEqual([ra.load().entries.length, rc.load().entries.length], [2, 4]);
    await Promise.all([ra.close(), rc.close()]);
  });

  it('takes over the log a replica kept of its own (an older build), then removes it', async () => {
    const dir = fresh();
    const shared = join(dir, 'shared');
    const path = join(dir, 'r1');
    const s = await openStore({ path, sharedData: shared });
    s.load(CONF);
    await s.close();
    // What the older build left after a crash: a Ready only its own log holds.
    const own = openFileWal(join(path, WAL_DIR));
    await own.wal.append(encodeReadyRecord(runsOf(entries(1, 3, 2)), hs(2, 3))).durable;
    await own.wal.close();
    const again = await openStore({ path, sharedData: shared });
    const st = again.load();
    assert.deepEqual(st.entries.map((e) => e.index), [1, 2, 3]);
    assert.deepEqual(st.hardState, hs(2, 3));
    assert.equal(fs.existsSync(join(path, WAL_DIR)), false);
    await again.persist(ready({ entries: entries(4, 4, 2), hardState: hs(2, 4) }));
    await again.close();
    const third = await openStore({ path, sharedData: shared });
    assert.deepEqual(third.load().entries.map((e) => e.index), [1, 2, 3, 4]);
    await third.close();
  });
});
