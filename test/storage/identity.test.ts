// A store records which replica of which group it is; a replica started on another replica's data
// directory (swapped --id, --group or --data) is refused at open with a clear error, and the
// store is left as it was. Per store: replicas sharing one environment each keep their own.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openReplicaStore, openStore, StorageError } from '../../src/storage/index.ts';
import { StoreIdentityError, type StoreIdentity } from '../../src/storage/open-store.ts';
import { MARKER_FILE } from '../../src/storage/shared-env.ts';
import { CONF, entries, hs, ready, tempDir } from './helpers.ts';

const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function scratch(): string {
  const d = tempDir('identity');
  dirs.push(d);
  return d;
}

const R101: StoreIdentity = { group: 1, replica: 101 };
const R102: StoreIdentity = { group: 1, replica: 102 };
const G2R101: StoreIdentity = { group: 2, replica: 101 };

/** Writes three entries and a vote into the store, then closes it. */
async function written(open: () => Promise<Awaited<ReturnType<typeof openStore>>>): Promise<void> {
  const s = await open();
  s.load(CONF);
  await s.persist(ready({ entries: entries(1, 3, 2), hardState: hs(2, 3, 101) }));
  await s.settled();
  await s.close();
}

/** Every file under `dir`, with its bytes: what a refused open must leave alone. */
function snapshotOf(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const name of fs.readdirSync(dir, { recursive: true }) as string[]) {
    const p = join(dir, name);
    if (fs.statSync(p).isFile() && !name.endsWith('lock.mdb')) out.set(name, fs.readFileSync(p));
  }
  return out;
}

function refusal(asked: StoreIdentity, held: StoreIdentity, dir: string): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof StoreIdentityError, `a StoreIdentityError, not ${String(e)}`);
    assert.ok(e instanceof StorageError);
    assert.deepEqual(e.held, held);
    assert.deepEqual(e.asked, asked);
    assert.equal(e.dir, dir);
    assert.ok(e.message.startsWith(`${dir} holds the store of replica ${held.replica} of group ${held.group}`), e.message);
    assert.match(e.message, new RegExp(`started as replica ${asked.replica} of group ${asked.group} \\(--id ${asked.replica} --group ${asked.group}\\)`));
    return true;
  };
}

describe('the identity of a store', () => {
  it('is recorded at creation; another replica or group is refused and the store is left as it was', async () => {
    const dir = join(scratch(), 'g1-r101');
    await written(async () => openReplicaStore({ path: dir, identity: R101 }));
    const before = snapshotOf(dir);
    assert.throws(() => openReplicaStore({ path: dir, identity: R102 }), refusal(R102, R101, dir));
    assert.throws(() => openReplicaStore({ path: dir, identity: G2R101 }), refusal(G2R101, R101, dir));
    assert.deepEqual(snapshotOf(dir), before, 'a refused open changes no file');
    // The store's own replica opens it as before; so does a tool that asks for no identity.
    for (const identity of [R101, undefined]) {
      const s = openReplicaStore({ path: dir, ...(identity ? { identity } : {}) });
      const st = s.load();
      assert.deepEqual(st.entries.map((e) => e.index), [1, 2, 3]);
      assert.deepEqual(st.hardState, hs(2, 3, 101));
      await s.close();
    }
  });

  it('is recorded at the first open of a store written without one, then checked', async () => {
    const dir = join(scratch(), 'old');
    // A store as the previous version left it: no identity record.
    await written(async () => openReplicaStore({ path: dir }));
    const s = openReplicaStore({ path: dir, identity: R102 });
    assert.deepEqual(s.load().entries.map((e) => e.index), [1, 2, 3], 'the old store is read as it was');
    await s.close();
    assert.throws(() => openReplicaStore({ path: dir, identity: R101 }), refusal(R101, R102, dir));
    const again = openReplicaStore({ path: dir, identity: R102 });
    assert.deepEqual(again.load().hardState, hs(2, 3, 101));
    await again.close();
  });

  it('is per store in a shared environment: swapped directories are refused, each store keeps its own', async () => {
    const root = scratch();
    const shared = join(root, 'p0');
    const r101 = join(root, 'g1-r101');
    const r201 = join(root, 'g2-r201');
    const G2R201 = { group: 2, replica: 201 };
    await written(() => openStore({ path: r101, sharedData: shared, identity: R101 }));
    await written(() => openStore({ path: r201, sharedData: shared, identity: G2R201 }));
    // Both open at once, each as itself.
    const one = await openStore({ path: r101, sharedData: shared, identity: R101 });
    const two = await openStore({ path: r201, sharedData: shared, identity: G2R201 });
    await Promise.all([one.close(), two.close()]);
    const marker101 = JSON.parse(fs.readFileSync(join(r101, MARKER_FILE), 'utf8')) as { store: string };
    await assert.rejects(openStore({ path: r101, sharedData: shared, identity: G2R201 }), (e) => {
      refusal(G2R201, R101, r101)(e);
      assert.match((e as Error).message, new RegExp(`\\(store ${marker101.store} in ${shared}\\)`));
      return true;
    });
    // The refused open gave its lease back: the store opens again in this process.
    const back = await openStore({ path: r201, sharedData: shared, identity: G2R201 });
    assert.deepEqual(back.load().entries.map((e) => e.index), [1, 2, 3]);
    await back.close();
    // A third replica, new, in the same environment records its own identity.
    const r102 = join(root, 'g1-r102');
    await written(() => openStore({ path: r102, sharedData: shared, identity: R102 }));
    await assert.rejects(openStore({ path: r102, identity: R101 }), refusal(R101, R102, r102));
  });

  it('of a shared store written without one is recorded at its first open', async () => {
    const root = scratch();
    const shared = join(root, 'p0');
    const dir = join(root, 'r');
    await written(() => openStore({ path: dir, sharedData: shared }));
    const s = await openStore({ path: dir, identity: G2R101 });
    assert.deepEqual(s.load().entries.map((e) => e.index), [1, 2, 3]);
    await s.close();
    await assert.rejects(openStore({ path: dir, identity: R101 }), refusal(R101, G2R101, dir));
  });
});
