// A new store never takes in a write-ahead log it finds in its directory. Found by an outside test:
// with data.mdb and replica.id removed (and wal/ left), a replica started as a fresh store and
// replayed the old store's log into it. That log lacks what the old store wrote to LMDB alone (an
// overwrite of its suffix, a snapshot install, a compaction), so entries a newer term had
// replaced came back as if never overwritten.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { StorageCorruptionError } from '../../src/storage/errors.ts';
import { openReplicaStore, openStore } from '../../src/storage/index.ts';
import { CONF, entries, hs, openFresh, ready, tempDir } from './helpers.ts';

const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** A store whose entries 2..3 of term 1 (in its log) were overwritten by term 2 (in LMDB alone). */
async function overwrittenStore(dir: string): Promise<void> {
  const store = openFresh(dir);
  await store.persist(ready({ entries: entries(1, 3, 1), hardState: hs(1, 1) }));
  await store.persist(ready({ entries: entries(2, 3, 2), hardState: hs(2, 1) }));
  await store.persist(ready({ entries: entries(4, 4, 2), hardState: hs(2, 1) }));
  await store.close();
}

const snapshotOf = (dir: string): Map<string, Buffer> =>
  new Map(fs.readdirSync(join(dir, 'wal')).map((n) => [n, fs.readFileSync(join(dir, 'wal', n))]));

it('a fresh store refuses a log left in its directory, and leaves it as it is', async () => {
  const dir = tempDir('stray-log');
  dirs.push(dir);
  await overwrittenStore(dir);
  for (const f of ['data.mdb', 'lock.mdb', 'replica.id']) fs.rmSync(join(dir, f));
  const wal = snapshotOf(dir);
  for (let attempt = 0; attempt < 2; attempt++) {
    assert.throws(
      () => openReplicaStore({ path: dir }).load(CONF),
      (e: unknown) => e instanceof StorageCorruptionError && e.file === join(dir, 'wal') && /holds no store/.test(e.message) && /remove the replica's whole data directory/.test(e.message),
    );
  }
  assert.deepEqual(snapshotOf(dir), wal, 'the log was changed');
});

it('the same for a new store in a shared environment', async () => {
  const dir = tempDir('stray-log-shared');
  dirs.push(dir);
  const replica = join(dir, 'r1');
  await overwrittenStore(replica);
  for (const f of ['data.mdb', 'lock.mdb', 'replica.id']) fs.rmSync(join(replica, f));
  await assert.rejects(openStore({ path: replica, sharedData: join(dir, 'p0') }), (e: unknown) => e instanceof StorageCorruptionError && e.file === join(replica, 'wal'));
});

// The refusal says to restore the data file: done, the replica must open its own store again. A
// refused start as a new shared store left a marker behind, and the restored store was then
// refused as holding "a store of its own and a marker".
it('a refused shared start leaves nothing behind: the restored store opens, and its log is replayed', async () => {
  const dir = tempDir('stray-log-restore');
  dirs.push(dir);
  const replica = join(dir, 'r1');
  await overwrittenStore(replica);
  const saved = join(dir, 'saved');
  fs.mkdirSync(saved);
  for (const f of ['data.mdb', 'replica.id']) fs.renameSync(join(replica, f), join(saved, f));
  fs.rmSync(join(replica, 'lock.mdb'));
  const before = fs.readdirSync(replica).sort();
  await assert.rejects(openStore({ path: replica, sharedData: join(dir, 'p0') }), (e: unknown) => e instanceof StorageCorruptionError && e.file === join(replica, 'wal'));
  assert.deepEqual(fs.readdirSync(replica).sort(), before, 'the refused start left files in the replica directory');
  for (const f of ['data.mdb', 'replica.id']) fs.renameSync(join(saved, f), join(replica, f));
  const store = await openStore({ path: replica, sharedData: join(dir, 'p0') });
  const st = store.load(CONF);
  assert.deepEqual(st.entries.map((e) => `${e.index}/${e.term}`), ['1/1', '2/2', '3/2', '4/2']);
  await store.close();
});
