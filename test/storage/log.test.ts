// The Raft side of the store: persist, reopen, load.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import fs from 'node:fs';
import { openReplicaStore, StorageError } from '../../src/storage/index.ts';
import { CONF, entries, entry, hs, openFresh, ready, tempDir } from './helpers.ts';

const dirs: string[] = [];
const dir = (label: string): string => {
  const d = tempDir(label);
  dirs.push(d);
  return d;
};
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

const view = (es: { index: number; term: number; type: number; data: Uint8Array }[]) =>
  es.map((e) => ({ ...e, data: Buffer.from(e.data).toString() }));

describe('log persistence', () => {
  it('a fresh store starts from the initial configuration, and needs it', async () => {
    const d = dir('fresh');
    const s = openReplicaStore({ path: d });
    assert.throws(() => s.load(), /initial configuration/);
    assert.deepEqual(s.load(CONF), {
      hardState: { term: 0, vote: 0, commit: 0 },
      base: { index: 0, term: 0, conf: CONF },
      entries: [],
      applied: 0,
    });
    await s.close();
    const again = openReplicaStore({ path: d });
    assert.deepEqual(again.load({ voters: [9], learners: [] }).base.conf, CONF); // ignored once created
    await again.close();
  });

  it('round-trips entries and hard state in index order across byte boundaries', async () => {
    const d = dir('order');
    let s = openFresh(d);
    // Indexes crossing 255/256 and 65535/65536 check the big-endian keys sort numerically.
    const all = entries(1, 70_000, 1);
    for (let i = 0; i < all.length; i += 5000) {
      const batch = all.slice(i, i + 5000);
      await s.persist(ready({ entries: batch, hardState: hs(1, batch.at(-1)!.index) }));
    }
    await s.close();
    s = openReplicaStore({ path: d });
    const st = s.load();
    assert.equal(st.entries.length, 70_000);
    st.entries.forEach((e, i) => assert.equal(e.index, i + 1));
    assert.deepEqual(view(st.entries.slice(250, 260)), view(all.slice(250, 260)));
    assert.deepEqual(view(st.entries.slice(65530, 65540)), view(all.slice(65530, 65540)));
    assert.deepEqual(st.hardState, hs(1, 70_000));
    await s.close();
  });

  it('keeps each record type: conf entries, empty data, term and vote', async () => {
    const d = dir('records');
    let s = openFresh(d);
    const es = [
      { index: 1, term: 2, type: 1 as const, data: Buffer.from('conf-bytes') },
      { index: 2, term: 2, type: 0 as const, data: Buffer.alloc(0) },
      { index: 3, term: 3, type: 0 as const, data: Buffer.alloc(300_000, 7) },
    ];
    await s.persist(ready({ entries: es, hardState: { term: 3, vote: 2, commit: 1 } }));
    await s.persist(ready({ hardState: { term: 4, vote: 0, commit: 2 } }));
    await s.close();
    s = openReplicaStore({ path: d });
    const st = s.load();
    assert.deepEqual(st.hardState, { term: 4, vote: 0, commit: 2 });
    assert.deepEqual(
      st.entries.map((e) => ({ ...e, data: Buffer.from(e.data) })),
      es.map((e) => ({ ...e, data: Buffer.from(e.data) })),
    );
    await s.close();
  });

  it('an entry at a stored index replaces it and everything after it', async () => {
    const d = dir('overwrite');
    let s = openFresh(d);
    await s.persist(ready({ entries: entries(1, 10, 1), hardState: hs(1, 3) }));
    // A new leader's log diverges at 6 and is shorter: 7..10 must go.
    await s.persist(ready({ entries: [entry(6, 2)], hardState: hs(2, 3) }));
    await s.close();
    s = openReplicaStore({ path: d });
    const st = s.load();
    assert.deepEqual(
      st.entries.map((e) => [e.index, e.term]),
      [[1, 1], [2, 1], [3, 1], [4, 1], [5, 1], [6, 2]],
    );
    await s.persist(ready({ entries: entries(7, 8, 2) }));
    await s.close();
    s = openReplicaStore({ path: d });
    assert.equal(s.load().entries.at(-1)!.index, 8);
    await s.close();
  });

  it('overwrites and compactions cut runs anywhere: at, inside and across run boundaries', async () => {
    const d = dir('runs');
    let s = openFresh(d);
    // Runs: 1..10, 11..20, 21..30 (one per Ready), then cuts at every kind of position.
    for (const from of [1, 11, 21]) await s.persist(ready({ entries: entries(from, from + 9, 1), hardState: hs(1, from + 9) }));
    await s.persist(ready({ entries: entries(21, 22, 2), hardState: hs(2, 20) })); // at a boundary
    await s.persist(ready({ entries: entries(15, 16, 3), hardState: hs(3, 14) })); // inside 11..20, dropping 21..22
    await s.persist(ready({ entries: entries(9, 12, 4), hardState: hs(4, 8) })); // across 1..10 and 11..14
    await s.apply(8, []);
    await s.persist(ready({ compaction: { index: 3, term: 1, conf: CONF } })); // inside the first run
    await s.persist(ready({ compaction: { index: 8, term: 1, conf: CONF } })); // at the end of the rewritten run
    await s.close();
    s = openReplicaStore({ path: d });
    const st = s.load();
    assert.equal(st.base.index, 8);
    assert.deepEqual(
      st.entries.map((e) => [e.index, e.term]),
      [[9, 4], [10, 4], [11, 4], [12, 4]],
    );
    await s.close();
  });

  // Found by the simulator (seed 200053, 5 nodes): a follower's Ready compacted into a run and
  // replaced that run's tail. Each cut read the committed run and rewrote it, so the overwrite
  // brought back the compacted prefix (and the compaction kept the replaced entry): the store no
  // longer opened ("an entry at or below the base").
  it('one Ready that compacts and overwrites inside the same run keeps only what both leave', async () => {
    const d = dir('compact-overwrite');
    let s = openFresh(d);
    await s.persist(ready({ entries: entries(1, 9, 1), hardState: hs(1, 7) })); // one run 1..9
    await s.apply(7, []);
    await s.persist(ready({ compaction: { index: 3, term: 1, conf: CONF }, entries: entries(9, 9, 2), hardState: hs(2, 7) }));
    await s.close();
    s = openReplicaStore({ path: d });
    const st = s.load();
    assert.equal(st.base.index, 3);
    assert.deepEqual(
      st.entries.map((e) => [e.index, e.term]),
      [[4, 1], [5, 1], [6, 1], [7, 1], [8, 1], [9, 2]],
    );
    await s.close();
    // Cuts in different runs of one Ready, too: compaction inside 1..10, overwrite inside 11..20.
    const d2 = dir('compact-overwrite-2');
    s = openFresh(d2);
    for (const from of [1, 11]) await s.persist(ready({ entries: entries(from, from + 9, 1), hardState: hs(1, from + 9) }));
    await s.apply(12, []);
    await s.persist(ready({ compaction: { index: 5, term: 1, conf: CONF }, entries: entries(15, 15, 2), hardState: hs(2, 12) }));
    await s.close();
    s = openReplicaStore({ path: d2 });
    assert.deepEqual(
      s.load().entries.map((e) => e.index),
      [6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
    );
    await s.close();
  });

  it('allows one Ready in flight at a time', async () => {
    const s = openFresh(dir('inflight'));
    const first = s.persist(ready({ entries: entries(1, 2, 1) }));
    await assert.rejects(s.persist(ready({ entries: entries(3, 3, 1) })), /previous Ready is still being persisted/);
    await first;
    await s.persist(ready({ entries: entries(3, 3, 1) }));
    await s.close();
  });

  it('compaction drops the prefix and records the base', async () => {
    const d = dir('compact');
    let s = openFresh(d);
    await s.persist(ready({ entries: entries(1, 100, 1), hardState: hs(1, 100) }));
    await s.apply(60, []);
    const meta = { index: 50, term: 1, conf: { voters: [1, 2], learners: [3] } };
    await s.persist(ready({ compaction: meta }));
    await s.close();
    s = openReplicaStore({ path: d });
    const st = s.load();
    assert.deepEqual(st.base, meta);
    assert.equal(st.entries[0]!.index, 51);
    assert.equal(st.entries.length, 50);
    assert.equal(st.applied, 60);
    // a compaction at or below the base is a no-op
    await s.persist(ready({ compaction: { index: 40, term: 1, conf: CONF } }));
    await s.close();
  });

  it('refuses Readies that break the log contract, before writing anything', async () => {
    const s = openFresh(dir('contract'));
    await s.persist(ready({ entries: entries(1, 5, 2), hardState: hs(2, 5) }));
    await s.apply(3, []);
    const bad = [
      ready({ entries: [entry(7, 2)] }), // gap after 5
      ready({ entries: [entry(6, 2), entry(8, 2)] }), // not contiguous
      ready({ entries: [entry(3, 3)] }), // overwrites applied entry 3
      ready({ hardState: hs(1, 5) }), // term going back
      ready({ hardState: hs(2, 6) }), // commit beyond the log
      ready({ compaction: { index: 4, term: 2, conf: CONF } }), // beyond applied 3
      ready({ compaction: { index: 2, term: 1, conf: CONF } }), // wrong term
      ready({ snapshot: { index: 9, term: 2, conf: CONF } }), // nothing staged
    ];
    for (const rd of bad) await assert.rejects(s.persist(rd), StorageError);
    // nothing of it reached the disk, and the store still works
    await s.persist(ready({ entries: [entry(6, 2)] }));
    await s.close();
  });

  it('apply refuses indexes already applied or beyond the log', async () => {
    const s = openFresh(dir('apply-bounds'));
    await s.persist(ready({ entries: entries(1, 3, 1), hardState: hs(1, 3) }));
    assert.throws(() => s.apply(4, []), /log ends at 3/);
    await s.apply(2, []);
    assert.throws(() => s.apply(2, []), /already applied/);
    await s.close();
  });

  it('an empty Ready writes nothing and resolves at once', async () => {
    const s = openFresh(dir('empty'));
    await s.persist(ready({}));
    await s.close();
  });
});

describe('the log and the checkpoint (found in review, 2026-12-06)', () => {
  it('drops log records only once the checkpoint holding them is flushed, not merely committed', async () => {
    // With lmdb-js overlappingSync (bench/storage.ts measures it) a commit resolves before its
    // flush; a power loss between the two loses it, so the log must keep the records until then.
    const dir = tempDir('flushed');
    const store = openReplicaStore({ path: dir, overlappingSync: true, checkpointMs: 1 });
    store.load(CONF);
    const inner = store as unknown as { env: { root: object }; wal: { release(seq: number): void } };
    let flush!: () => void;
    const pending = new Promise<void>((r) => (flush = r));
    Object.defineProperty(inner.env.root, 'flushed', { configurable: true, get: () => pending });
    const released: number[] = [];
    const release = inner.wal.release.bind(inner.wal);
    inner.wal.release = (seq) => {
      released.push(seq);
      release(seq);
    };
    await store.persist(ready({ entries: entries(1, 3, 1), hardState: hs(1, 0) }));
    await store.settled(); // the checkpoint holding record 1 has committed
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(released, [], 'nothing released before the flush');
    flush();
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(released, [1]);
    delete (inner.env.root as { flushed?: unknown }).flushed;
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  it('after a held-back write throws, the later ones are not handed to LMDB', async () => {
    // An apply partly queued must not be followed into LMDB's batch by a later apply's index.
    const dir = tempDir('thrown');
    const store = openFresh(dir);
    const inner = store as unknown as { defer(w: () => Promise<unknown>): Promise<unknown>; flushDeferred(): void };
    let later = false;
    const first = inner.defer(() => {
      throw new Error('a put LMDB refused');
    });
    const second = inner.defer(() => {
      later = true;
      return Promise.resolve();
    });
    inner.flushDeferred();
    await assert.rejects(first, /refused/);
    await assert.rejects(second, /refused/);
    assert.equal(later, false);
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
