// The memory storage keeps LMDB's crash semantics: what was not synced is lost, a batch is
// visible only once synced, apply joins the persist issued in the same turn, and a reopened store
// (after a crash at any point) recovers exactly the synced batches. The same Readys on the LMDB
// store and on the memory store recover to the same state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { MemoryDisk, MemoryWalDisk, openMemoryStore, type DiskTiming, type ReplicaStore } from '../../src/storage/index.ts';
import type { Command, CommandResult } from '../../src/storage/types.ts';
import { CONF, b, entries, hs, openFresh, ready, tempDir } from './helpers.ts';

/** Timing by hand: turns end and syncs complete when the test says. */
class Hand implements DiskTiming {
  private turns: (() => void)[] = [];
  private syncs: (() => void)[] = [];
  afterTurn(fn: () => void): void {
    this.turns.push(fn);
  }
  sync(fn: () => void): void {
    this.syncs.push(fn);
  }
  /** Ends the turn: started batches run their writes (not synced yet). */
  async endTurn(): Promise<void> {
    await settle();
    for (const fn of this.turns.splice(0)) fn();
    await settle();
  }
  async syncAll(): Promise<void> {
    await this.endTurn();
    while (this.syncs.length > 0) {
      for (const fn of this.syncs.splice(0)) fn();
      await this.endTurn();
    }
  }
}

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));
const put = (k: string, v: string): Command => ({ type: 'ops', ops: [{ type: 'put', key: b(k), value: b(v) }] });

function fresh(): { disk: MemoryDisk; hand: Hand; store: ReplicaStore } {
  const disk = new MemoryDisk();
  const hand = new Hand();
  const store = openMemoryStore(disk.open(hand));
  store.load(CONF);
  return { disk, hand, store };
}

test('a persisted Ready survives a crash only once synced', async () => {
  const { disk, hand, store } = fresh();
  let done = false;
  void store.persist(ready({ entries: entries(1, 3, 1), hardState: hs(1, 0) })).then(() => (done = true));
  await hand.endTurn();
  assert.equal(done, false, 'persist resolves only after the sync');
  disk.crash();
  await hand.syncAll(); // the dead process's sync never lands
  const after = openMemoryStore(disk.open(new Hand())).load();
  assert.equal(after.entries.length, 0);
  assert.deepEqual(after.hardState, { term: 0, vote: 0, commit: 0 });
  assert.equal(done, false, 'a crashed process hears nothing back');

  const again = fresh();
  const p = again.store.persist(ready({ entries: entries(1, 3, 1), hardState: hs(1, 0) }));
  await again.hand.syncAll();
  await p;
  again.disk.crash();
  const kept = openMemoryStore(again.disk.open(new Hand())).load();
  assert.deepEqual(kept.entries.map((e) => e.index), [1, 2, 3]);
  assert.deepEqual(kept.hardState, hs(1, 0));
});

test('apply joins the persist of its turn: results before the sync, visible and durable after it', async () => {
  const { disk, hand, store } = fresh();
  const v0 = disk.version;
  const persisting = store.persist(ready({ entries: entries(1, 2, 1), hardState: hs(1, 2) }));
  let early: CommandResult[] | undefined;
  const applying = store.apply(2, [put('k', 'v1')], (r) => (early = r));
  await hand.endTurn();
  assert.deepEqual(early, [{ outcome: 'applied', results: [{ status: 'ok' }] }], 'results are computed when the batch runs');
  assert.equal(store.get(b('k')), null, 'reads do not see an unsynced batch');
  assert.equal(disk.version, v0, 'nothing new is durable');
  await hand.syncAll();
  await Promise.all([persisting, applying]);
  assert.equal(disk.version, v0 + 1, 'persist and apply went into one batch (one sync)');
  assert.deepEqual(store.get(b('k')), b('v1'));
  assert.equal(store.applied, 2);
});

test('a crash between apply and its sync loses the apply, and the reopened store re-applies from the log', async () => {
  const { disk, hand, store } = fresh();
  const p = store.persist(ready({ entries: entries(1, 2, 1), hardState: hs(1, 0) }));
  await hand.syncAll();
  await p;
  void store.apply(2, [put('k', 'v1')]);
  await hand.endTurn();
  disk.crash();
  const reopened = openMemoryStore(disk.open(new Hand()));
  const st = reopened.load();
  assert.equal(st.applied, 0);
  assert.deepEqual(st.entries.map((e) => e.index), [1, 2]);
  assert.equal(reopened.get(b('k')), null);
});

test('writes of the next turn wait for the batch being synced, then sync in order', async () => {
  const { disk, hand, store } = fresh();
  const v0 = disk.version;
  const first = store.persist(ready({ entries: entries(1, 1, 1), hardState: hs(1, 1) }));
  await hand.endTurn(); // batch 1 runs, not synced
  const second = store.apply(1, [put('a', '1')]);
  await hand.endTurn();
  assert.equal(disk.version, v0);
  await hand.syncAll();
  await Promise.all([first, second]);
  assert.equal(disk.version, v0 + 2, 'two batches, synced in order');
  assert.deepEqual(store.get(b('a')), b('1'));
  // A failing apply (an index beyond the log) is refused before anything is written.
  assert.throws(() => store.apply(5, [put('b', '2')]));
});

test('the same Readys on LMDB and in memory recover to the same state', async () => {
  const dir = tempDir('memory-equiv');
  try {
    const lmdb = openFresh(dir);
    const { hand, store: mem, disk } = fresh();
    const steps = async (s: ReplicaStore, drive: () => Promise<void>): Promise<void> => {
      const run = async (ps: Promise<unknown>[]): Promise<void> => {
        await drive();
        await Promise.all(ps);
      };
      await run([s.persist(ready({ entries: entries(1, 5, 1), hardState: hs(1, 3) })), s.apply(3, [put('x', '1'), put('y', '2')])]);
      await run([s.persist(ready({ entries: entries(4, 6, 2), hardState: hs(2, 6, 2) })), s.apply(6, [put('x', '3')])]);
      await run([s.persist(ready({ compaction: { index: 4, term: 2, conf: CONF } }))]);
    };
    await steps(lmdb, async () => {});
    await steps(mem, () => hand.syncAll());
    await lmdb.close();
    disk.crash();
    const a = openFresh(dir);
    const m = openMemoryStore(disk.open(new Hand()));
    assert.deepEqual(m.load(), a.load());
    for (const k of ['x', 'y', 'z']) assert.deepEqual(m.get(b(k)), a.get(b(k)));
    await a.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('stores of a shared environment: one batch and one sync per turn, each its own data, one crash', async () => {
  const disk = new MemoryDisk();
  const hand = new Hand();
  const shared = disk.openShared(hand);
  const [a, c] = [openMemoryStore(shared('g1')), openMemoryStore(shared('g2'))];
  a.load(CONF);
  c.load(CONF);
  await hand.syncAll();
  const v0 = disk.version;
  const writes = [
    a.persist(ready({ entries: entries(1, 2, 1), hardState: hs(1, 2) })),
    a.apply(2, [put('k', 'a')]),
    c.persist(ready({ entries: entries(1, 1, 1), hardState: hs(1, 1) })),
    c.apply(1, [put('k', 'c')]),
  ];
  await hand.syncAll();
  await Promise.all(writes);
  assert.equal(disk.version, v0 + 1, "both stores' writes of the turn went into one batch");
  assert.deepEqual([a.get(b('k')), c.get(b('k'))], [b('a'), b('c')]);
  // A turn's writes to both stores, not synced when the process dies: both are lost.
  void a.persist(ready({ entries: entries(3, 3, 1), hardState: hs(1, 3) }));
  void a.apply(3, [put('k', 'lost')]);
  void c.persist(ready({ entries: entries(2, 3, 1), hardState: hs(1, 1) }));
  await hand.endTurn();
  disk.crash();
  const again = disk.openShared(new Hand());
  const [ra, rc] = [openMemoryStore(again('g1')), openMemoryStore(again('g2'))];
  assert.deepEqual([ra.load().applied, rc.load().entries.length], [2, 1]);
  assert.deepEqual([ra.get(b('k')), rc.get(b('k'))], [b('a'), b('c')]);
  assert.equal(openMemoryStore(again('g3')).load(CONF).entries.length, 0, 'a third store starts empty');
});

/** A store with a write-ahead log whose LMDB checkpoint runs when the test says. */
function freshLogged(): { disk: MemoryDisk; wal: MemoryWalDisk; hand: Hand; store: ReplicaStore; checkpoint: () => void } {
  const disk = new MemoryDisk();
  const wal = new MemoryWalDisk();
  const hand = new Hand();
  let due: (() => void) | undefined;
  const store = openMemoryStore(disk.open(hand), undefined, (after) => wal.open('s', hand, after), (fn) => {
    due = fn;
    return () => (due = undefined);
  });
  store.load(CONF);
  return { disk, wal, hand, store, checkpoint: () => [due, (due = undefined)][0]?.() };
}

test('a Ready that only moves the commit index waits for no sync, and a crash may forget it', async () => {
  const { disk, wal, hand, store } = freshLogged();
  const appended = store.persist(ready({ entries: entries(1, 3, 1), hardState: hs(1, 0) }));
  await hand.syncAll();
  await appended;
  let done = false;
  void store.persist(ready({ hardState: hs(1, 3) })).then(() => (done = true));
  await settle();
  assert.equal(done, true, 'resolved without a sync');
  // A new vote is not a commit: it waits for its sync.
  let voted = false;
  void store.persist(ready({ hardState: hs(2, 3, 2) })).then(() => (voted = true));
  await settle();
  assert.equal(voted, false, 'a vote waits for its sync');
  disk.crash();
  wal.crash();
  const st = openMemoryStore(disk.open(new Hand()), undefined, (after) => wal.open('s', new Hand(), after)).load();
  assert.deepEqual(st.entries.map((e) => e.index), [1, 2, 3], 'the synced entries are kept');
  assert.deepEqual(st.hardState, hs(1, 0), 'the commit index (volatile in Raft) and the unsynced vote are forgotten');

  // Once the checkpoint commits it, the commit index survives a crash.
  const again = freshLogged();
  const p = again.store.persist(ready({ entries: entries(1, 3, 1), hardState: hs(1, 0) }));
  await again.hand.syncAll();
  await p;
  await again.store.persist(ready({ hardState: hs(1, 3) }));
  again.checkpoint();
  await again.hand.syncAll();
  again.disk.crash();
  again.wal.crash();
  const kept = openMemoryStore(again.disk.open(new Hand()), undefined, (after) => again.wal.open('s', new Hand(), after)).load();
  assert.deepEqual(kept.hardState, hs(1, 3));
  assert.deepEqual(kept.entries.map((e) => e.index), [1, 2, 3]);
});
