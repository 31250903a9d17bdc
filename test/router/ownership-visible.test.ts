// A read is answered from the partition ownership of the data it can see. The state machine plans a
// batch of committed entries (and moves its ownership on) when the apply starts, but the store makes
// the batch's data visible only when its commit ends; the replica's loop plans the next Ready as soon
// as the previous one is applied, so a read released by one Ready may run after the next one was
// planned. If that batch imports a partition's data and activates it, the ownership said "served"
// while the imported values were not visible yet: the read answered the pre-copied (older) value or
// nothing, where the state at its read point would have answered WRONG_GROUP (go to the source).
// Found by an outside tester reading the hosted-follower read path (a follower catching up applies
// the last import and the activation in one batch).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EntryType, type Entry, type Ready } from '../../src/raft/types.ts';
import { createPartitioner } from '../../src/partition/index.ts';
import { HandOffTarget, encodeImport, encodeOwnership } from '../../src/replica/commands.ts';
import { machineStorage, type MachineStore } from '../../src/replica/machine-storage.ts';
import { PartState, emptyOwnership } from '../../src/replica/ownership.ts';
import { StateMachine } from '../../src/replica/state-machine.ts';
import type { Command, CommandResult } from '../../src/storage/types.ts';
import { HEADER_BYTES } from '../../src/wire/frame.ts';
import { encodeExportChunk } from '../../src/wire/handoff-codec.ts';
import { callLocal, stubRouter } from '../support/stub-router.ts';

const b = (s: string): Buffer => Buffer.from(s);

/** A store whose applies become visible only when the test commits them. */
class HeldStore implements MachineStore {
  readonly data = new Map<string, Uint8Array>();
  private held: { commands: readonly Command[]; resolve: (r: CommandResult[]) => void; onResults?: (r: CommandResult[]) => void }[] = [];
  persist(_rd: Ready): Promise<void> {
    return Promise.resolve();
  }
  apply(_index: number, commands: readonly Command[], onResults?: (r: CommandResult[]) => void): Promise<CommandResult[]> {
    return new Promise((resolve) => this.held.push({ commands, resolve, ...(onResults ? { onResults } : {}) }));
  }
  getMeta(): Uint8Array | undefined {
    return undefined;
  }
  /** The test decides when applies become visible (commit()), not the replica. */
  commitSoon(): void {}
  /** Makes the oldest `n` held applies visible (all by default), in order. */
  commit(n = this.held.length): void {
    for (const h of this.held.splice(0, n)) {
      for (const c of h.commands) {
        if (c.type === 'import') for (const it of c.items) this.data.set(Buffer.from(it.key).toString('latin1'), it.value);
      }
      const results = h.commands.map(() => ({}) as CommandResult);
      h.onResults?.(results);
      h.resolve(results);
    }
  }
  get(key: Uint8Array): Uint8Array | null {
    return this.data.get(Buffer.from(key).toString('latin1')) ?? null;
  }
}

/** Group 2 receiving the partition of `k-moving` from group 1, its pre-copied value visible. */
async function arriving() {
  const PARTITIONS = 16;
  const partitioner = await createPartitioner(PARTITIONS);
  const key = b('k-moving');
  const p = partitioner.partitionOf(key);
  const own = emptyOwnership(PARTITIONS);
  own.epoch = 2;
  own.state[p] = PartState.Arriving;
  own.peer[p] = 1;
  const sm = new StateMachine(2, partitioner, own);
  const store = new HeldStore();
  store.data.set('k-moving', b('precopied')); // an earlier import, visible
  return { key, p, sm, store, storage: machineStorage(store, sm) };
}

describe('router: ownership of a read matches the data it sees', () => {
  it('a partition activated in a batch not yet visible is not served from the pre-copy', async () => {
    const { key, p, sm, store, storage } = await arriving();

    let release!: () => void;
    const barrier = new Promise<void>((r) => (release = r));
    const router = stubRouter({
      replica: { isLeader: false, leader: 1, readBarrier: () => barrier, visibleBarrier: () => undefined },
      reader: { get: (k) => store.get(k), scan: () => ({ items: [], more: null }), count: () => store.data.size },
      ownership: sm.readerOwnership(),
    });

    // A linearizable read whose read point comes before the activation.
    const read = callLocal(router, { op: 'get', key, consistency: 'linearizable' });
    // The next batch: the last import (the value written at the source before it froze) and the
    // activation, planned now, visible only once the store commits it.
    const chunk = encodeExportChunk(1, { items: [{ key, value: b('final') }], sessions: [], next: null }).subarray(HEADER_BYTES);
    const entries: Entry[] = [
      { index: 10, term: 2, type: EntryType.Normal, data: encodeImport(chunk, HandOffTarget.Any) },
      { index: 11, term: 2, type: EntryType.Normal, data: encodeOwnership({ type: 'activate', partitions: [p] }) },
    ];
    const applying = storage.apply(entries, () => {});
    release();
    const res = await read;
    assert.notDeepEqual(res, { kind: 'value', value: b('precopied') }, 'served the pre-copied value of a partition whose last import it could not see');
    assert.equal(res.kind === 'error' && res.error.code, 'WRONG_GROUP');

    store.commit();
    await applying;
    const after = await callLocal(router, { op: 'get', key, consistency: 'linearizable' });
    assert.deepEqual(after, { kind: 'value', value: b('final') });
  });

  // Two batches in flight: the earlier one (any write) commits while the next one, holding the last
  // import and the activation, is planned but not visible. Publishing the ownership planned so far
  // at the first commit served the partition from the pre-copied value. Found by the live
  // resharding test (3 → 4 → 2 → 3 groups, 1 replica each): a get answered c1-583 after a CAS
  // c1-583 → c4-599 was acknowledged at the source just before its freeze.
  it('the commit of an earlier batch does not publish the activation planned after it', async () => {
    const { key, p, sm, store, storage } = await arriving();
    const router = stubRouter({
      replica: { isLeader: true, leader: 2, readBarrier: async () => {}, visibleBarrier: () => undefined },
      reader: { get: (k) => store.get(k), scan: () => ({ items: [], more: null }), count: () => store.data.size },
      ownership: sm.readerOwnership(),
    });
    const chunk = encodeExportChunk(1, { items: [{ key, value: b('final') }], sessions: [], next: null }).subarray(HEADER_BYTES);
    const earlier = storage.apply([{ index: 9, term: 2, type: EntryType.Normal, data: new Uint8Array(0) }], () => {});
    const handOff = storage.apply(
      [
        { index: 10, term: 2, type: EntryType.Normal, data: encodeImport(chunk, HandOffTarget.Any) },
        { index: 11, term: 2, type: EntryType.Normal, data: encodeOwnership({ type: 'activate', partitions: [p] }) },
      ],
      () => {},
    );
    store.commit(1);
    await earlier;
    const res = await callLocal(router, { op: 'get', key, consistency: 'linearizable' });
    assert.notDeepEqual(res, { kind: 'value', value: b('precopied') }, 'served the pre-copied value: the activation was published before its import was visible');
    assert.equal(res.kind === 'error' && res.error.code, 'WRONG_GROUP');
    store.commit();
    await handOff;
    assert.deepEqual(await callLocal(router, { op: 'get', key, consistency: 'linearizable' }), { kind: 'value', value: b('final') });
  });
});
