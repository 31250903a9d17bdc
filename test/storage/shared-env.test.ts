// Stores of several replicas in one LMDB environment (src/storage/shared-env.ts): one commit and
// one flush for every store's LMDB writes committed in one turn; each store its own log and state machine; the
// marker in a replica's directory decides where its store is; every mix-up is an error.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openReplicaStore, openStore, StorageCorruptionError, StorageError } from '../../src/storage/index.ts';
import { MARKER_FILE } from '../../src/storage/shared-env.ts';
import { b, CONF, entries, hs, ready, tempDir } from './helpers.ts';

const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function layout(): { root: string; shared: string; r: (n: number) => string } {
  const root = tempDir('shared');
  dirs.push(root);
  return { root, shared: join(root, 'p0'), r: (n) => join(root, `r${n}`) };
}

const putCmd = (k: string, v: string) => ({ type: 'ops' as const, ops: [{ type: 'put' as const, key: b(k), value: b(v) }] });
const marker = (dir: string): { env: string; store: string; id?: string } => JSON.parse(fs.readFileSync(join(dir, MARKER_FILE), 'utf8'));

describe('stores in a shared environment', () => {
  it('two stores committing in one turn cost one LMDB transaction and one flush, and keep their own data', async () => {
    const { shared, r } = layout();
    // Held back until the test commits them (no checkpoint timer fires in between).
    const one = await openStore({ path: r(1), sharedData: shared, trackMetrics: true, checkpointMs: 600_000 });
    const two = await openStore({ path: r(2), sharedData: shared, checkpointMs: 600_000 });
    one.load(CONF);
    two.load(CONF);
    const before = one.metrics();
    // Durable in each store's own log; LMDB's copies are held back until committed together.
    await Promise.all([one.persist(ready({ entries: entries(1, 3, 1), hardState: hs(1, 3) })), two.persist(ready({ entries: entries(1, 5, 2), hardState: hs(2, 5) }))]);
    one.commitSoon();
    two.commitSoon();
    await Promise.all([one.settled(), two.settled()]);
    const afterPersist = one.metrics();
    assert.equal(afterPersist.txns! - before.txns!, 1, 'one write transaction for both Readies');
    assert.equal(afterPersist.pageFlushes! - before.pageFlushes!, 1, 'one flush for both Readies');
    const applied = Promise.all([one.apply(3, [putCmd('a', 'from-one')]), two.apply(5, [putCmd('a', 'from-two')])]);
    one.commitSoon();
    two.commitSoon();
    await applied;
    assert.deepEqual(Buffer.from(one.get(b('a'))!), b('from-one'));
    assert.deepEqual(Buffer.from(two.get(b('a'))!), b('from-two'));
    await one.close();
    await two.close();

    // Reopened (the environment was closed with the last store): each finds its own.
    const again1 = await openStore({ path: r(1), sharedData: shared });
    const again2 = await openStore({ path: r(2) }); // the marker, not the flag, says where
    const s1 = again1.load();
    const s2 = again2.load();
    assert.deepEqual([s1.hardState.term, s1.entries.length, s1.applied], [1, 3, 3]);
    assert.deepEqual([s2.hardState.term, s2.entries.length, s2.applied], [2, 5, 5]);
    assert.deepEqual(Buffer.from(again2.get(b('a'))!), b('from-two'));
    assert.equal(again1.count(), 1);
    again1.verifyStateMachine();
    await again1.close();
    await again2.close();
    assert.deepEqual(Object.keys(marker(r(1))).sort(), ['env', 'id', 'store']);
    assert.equal(marker(r(1)).env, '../p0', 'kept relative, so the tree can move');
  });

  it('a replica directory with a store of its own keeps it; a marked one follows its marker', async () => {
    const { root, shared, r } = layout();
    const own = openReplicaStore({ path: r(1) });
    own.load(CONF);
    await own.persist(ready({ entries: entries(1, 2, 1), hardState: hs(1, 2) }));
    await own.close();
    const again = await openStore({ path: r(1), sharedData: shared });
    assert.equal(again.load().entries.length, 2);
    await again.close();
    assert.equal(fs.existsSync(join(r(1), MARKER_FILE)), false);

    const first = await openStore({ path: r(2), sharedData: shared });
    first.load(CONF);
    await first.persist(ready({ entries: entries(1, 4, 1), hardState: hs(1, 4) }));
    await first.close();
    // Asked for another shared directory later (a different host): the store stays where it is.
    const moved = await openStore({ path: r(2), sharedData: join(root, 'p1') });
    assert.equal(moved.load().entries.length, 4);
    await moved.close();
    // And the whole tree can move.
    const elsewhere = `${root}-moved`;
    fs.renameSync(root, elsewhere);
    dirs.push(elsewhere);
    const afterMove = await openStore({ path: join(elsewhere, 'r2') });
    assert.equal(afterMove.load().entries.length, 4);
    await afterMove.close();
  });

  it('refuses mix-ups: a store opened twice, a damaged marker, a lost store, a store beside a marker, the wrong kind of directory', async () => {
    const { shared, r } = layout();
    const s = await openStore({ path: r(1), sharedData: shared });
    s.load(CONF);
    await s.persist(ready({ entries: entries(1, 1, 1), hardState: hs(1, 1) }));
    await assert.rejects(openStore({ path: r(1) }), (e: unknown) => e instanceof StorageError && /already open in this process/.test((e as Error).message));
    await s.close();

    // The environment as if it were one replica's own directory, and the other way round.
    assert.throws(() => openReplicaStore({ path: shared }), (e: unknown) => e instanceof StorageError && /shared by several replicas/.test((e as Error).message));
    const own = openReplicaStore({ path: r(2) });
    own.load(CONF);
    await own.close();
    fs.mkdirSync(r(3));
    fs.writeFileSync(join(r(3), MARKER_FILE), JSON.stringify({ env: '../r2', store: 'x' }));
    await assert.rejects(openStore({ path: r(3) }), (e: unknown) => e instanceof StorageError && /one replica's store/.test((e as Error).message));

    // A marker beside a store of its own: which is it?
    fs.writeFileSync(join(r(2), MARKER_FILE), JSON.stringify({ env: '../p0', store: 'y' }));
    await assert.rejects(openStore({ path: r(2) }), (e: unknown) => e instanceof StorageError && /which one/.test((e as Error).message));

    // Damaged markers.
    for (const text of ['{', '{"env":"../p0"}', '{"env":"../p0","store":"../evil"}', '{"env":"../p0","store":"ok","id":"zz"}']) {
      fs.writeFileSync(join(r(3), MARKER_FILE), text);
      await assert.rejects(openStore({ path: r(3) }), (e: unknown) => e instanceof StorageCorruptionError, text);
    }

    // The marker names a created store (it has an id) that the environment does not hold.
    const m = marker(r(1));
    fs.writeFileSync(join(r(3), MARKER_FILE), JSON.stringify({ ...m, store: `${m.store}-gone` }));
    await assert.rejects(openStore({ path: r(3) }), (e: unknown) => e instanceof StorageCorruptionError && /is not in this environment/.test((e as Error).message));
    // The marker's id is not the store's.
    fs.writeFileSync(join(r(3), MARKER_FILE), JSON.stringify({ ...m, id: '0'.repeat(32) }));
    await assert.rejects(openStore({ path: r(3) }), (e: unknown) => e instanceof StorageCorruptionError && /names 0{32}/.test((e as Error).message));

    // The environment's data file replaced by an empty one.
    fs.rmSync(join(shared, 'data.mdb'));
    await assert.rejects(openStore({ path: r(1) }), (e: unknown) => e instanceof StorageCorruptionError && /data file is missing/.test((e as Error).message));
  });
});
