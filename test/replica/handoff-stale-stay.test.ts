// Hand-off entries name the stay of the partition they are for (the epoch at which it started
// arriving here). The gap this closes (closing note of 2026-12-07): a destination leader deposed
// in the middle of a wave, while it waited for a chunk (up to 15 s), and elected again only after
// the partition had gone round (activated by another leader, moved away, dropped, arriving again)
// still proposed that chunk's import and the wave's activation. Both applied: the partition was
// arriving again. It served the old stay's data, and its new source's data was never copied.
// Also: what the entries and ownership of an earlier version, which name no stay, mean now.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EntryType, type Entry } from '../../src/raft/types.ts';
import { createPartitioner } from '../../src/partition/index.ts';
import { decodeCommand, encodeImport, encodeOwnership, encodePurge } from '../../src/replica/commands.ts';
import { PartState, decodeOwnership, encodeOwnership as encodeOwnershipState, type OwnershipChange } from '../../src/replica/ownership.ts';
import { OWNERSHIP_META, StateMachine } from '../../src/replica/state-machine.ts';
import type { ClusterConfig } from '../../src/placement/config.ts';
import type { Command } from '../../src/storage/types.ts';
import { HEADER_BYTES } from '../../src/wire/index.ts';
import { encodeExportChunk } from '../../src/wire/handoff-codec.ts';

const P = 8;
const DEST = 2;
/** HandOffTarget.Dropping, spelt out: this file imports nothing new, so it also runs against the code before the fix. */
const DROPPING = -1;
const b = (s: string): Buffer => Buffer.from(s);
const group = (id: number): ClusterConfig['groups'][number] => ({ id, replicas: [{ id, address: `127.0.0.1:${9000 + id}` }] });
const base: ClusterConfig = { epoch: 1, partitions: P, loadFactor: 1.25, groups: [1, 2, 3].map(group), owner: Array<number>(P).fill(1), moves: [] };
/** Partition 0 moves 1 → 2 (epoch 2), completes (3), moves 2 → 3 (4), completes (5), moves 3 → 2 (6). */
const configs: ClusterConfig[] = [
  { ...base, epoch: 2, owner: [2, ...base.owner.slice(1)], moves: [{ partition: 0, from: 1, to: 2 }] },
  { ...base, epoch: 3, owner: [2, ...base.owner.slice(1)] },
  { ...base, epoch: 4, owner: [3, ...base.owner.slice(1)], moves: [{ partition: 0, from: 2, to: 3 }] },
  { ...base, epoch: 5, owner: [3, ...base.owner.slice(1)] },
  { ...base, epoch: 6, owner: [2, ...base.owner.slice(1)], moves: [{ partition: 0, from: 3, to: 2 }] },
];

/** A state machine of group 2 and the key-value effect of what it plans, on a plain map. */
async function destination(): Promise<{ sm: StateMachine; data: Map<string, string>; key: Buffer; feed: (...ds: Uint8Array[]) => void }> {
  const partitioner = await createPartitioner(P);
  const key = Array.from({ length: 100 }, (_, i) => b(`k${i}`)).find((k) => partitioner.partitionOf(k) === 0)!;
  const sm = new StateMachine(DEST, partitioner, undefined);
  const data = new Map<string, string>();
  let index = 0;
  const run = (commands: readonly Command[]): void => {
    for (const c of commands) {
      if (c.type === 'import') for (const it of c.items) data.set(Buffer.from(it.key).toString(), Buffer.from(it.value).toString());
      if (c.type === 'ops') for (const op of c.ops) if (op.type === 'delete') data.delete(Buffer.from(op.key).toString());
    }
  };
  const feed = (...ds: Uint8Array[]): void => run(sm.plan(ds.map((d): Entry => ({ index: ++index, term: 1, type: EntryType.Normal, data: d }))).commands);
  feed(encodeOwnership({ type: 'epoch', group: DEST, config: base }));
  return { sm, data, key, feed };
}

const epoch = (config: ClusterConfig): Uint8Array => encodeOwnership({ type: 'epoch', group: DEST, config });
const chunk = (key: Buffer, value: string): Uint8Array => encodeExportChunk(1, { items: [{ key, value: b(value) }], sessions: [], next: null }).subarray(HEADER_BYTES);
const activate = (arrivedAt?: number): Uint8Array => encodeOwnership({ type: 'activate', partitions: [0], ...(arrivedAt === undefined ? {} : { arrivedAt }) } as OwnershipChange);

describe('state machine: hand-off entries of an earlier stay', () => {
  it('an import and an activation of an earlier stay leave a partition arriving again alone', async () => {
    const { sm, data, key, feed } = await destination();
    // The first stay (arriving at epoch 2): another leader copies and activates; it moves away and is dropped.
    feed(epoch(configs[0]!), encodeImport(chunk(key, 'first stay'), 2), activate(2), epoch(configs[1]!), epoch(configs[2]!));
    feed(encodeOwnership({ type: 'freeze', partitions: [0] }), epoch(configs[3]!), encodePurge([key], DROPPING), encodeOwnership({ type: 'dropped', partitions: [0] }));
    assert.equal(data.has(key.toString()), false);
    feed(epoch(configs[4]!)); // arriving again, from group 3, since epoch 6
    assert.equal(sm.ownership!.state[0], PartState.Arriving);

    // The deposed leader of the first stay, leader again, proposes what it still held.
    feed(encodeImport(chunk(key, 'first stay, late'), 2), activate(2));
    assert.equal(sm.ownership!.state[0], PartState.Arriving, 'still arriving: the activation was for the first stay');
    assert.equal(data.has(key.toString()), false, 'nothing imported from the first stay');
    assert.equal(sm.stats.staleHandOffs, 2, 'both counted');

    // The current stay's wave applies.
    feed(encodeImport(chunk(key, 'second stay'), 6), activate(6));
    assert.equal(sm.ownership!.state[0], PartState.Serving);
    assert.equal(data.get(key.toString()), 'second stay');
  });

  it('a purge of an earlier stay leaves the current stay\'s imported keys alone', async () => {
    const { sm, data, key, feed } = await destination();
    feed(epoch(configs[0]!), activate(2), epoch(configs[1]!), epoch(configs[2]!), encodeOwnership({ type: 'freeze', partitions: [0] }));
    feed(epoch(configs[3]!), encodeOwnership({ type: 'dropped', partitions: [0] }), epoch(configs[4]!), encodeImport(chunk(key, 'second stay'), 6));
    feed(encodePurge([key], 2)); // the first stay's (a delta's removed keys, say), proposed late
    assert.equal(data.get(key.toString()), 'second stay');
    feed(encodePurge([key], DROPPING)); // a drop's purge: the partition is not dropping
    assert.equal(data.get(key.toString()), 'second stay');
    assert.equal(sm.ownership!.state[0], PartState.Arriving);
  });

  it('entries of an earlier version (no stay named) still apply to an arriving partition, as they did', async () => {
    const { sm, data, key, feed } = await destination();
    feed(epoch(configs[0]!));
    // The first version wrote 0 in the header's number of imports and purges, and no arrivedAt.
    const old = encodeImport(chunk(key, 'v'), 0);
    assert.deepEqual([decodeCommand(old).kind, (decodeCommand(old) as { target: number }).target], ['import', 0]);
    feed(old);
    assert.equal(data.get(key.toString()), 'v');
    feed(encodePurge([key], 0));
    assert.equal(data.has(key.toString()), false, 'an old purge deletes in an arriving partition');
    feed(old, activate());
    assert.equal(sm.ownership!.state[0], PartState.Serving);
    assert.equal(sm.stats.staleHandOffs, 0);
  });

  it('an ownership stored by an earlier version knows no stay: entries naming one apply, as before', async () => {
    const { sm, feed } = await destination();
    feed(epoch(configs[0]!));
    assert.equal(sm.ownership!.arrivedAt[0], 2);
    // The ownership meta (and a snapshot's) as the earlier version wrote it: no arrivedAt.
    const { arrivedAt: _, ...old } = sm.ownership!;
    const restored = decodeOwnership(Buffer.from(JSON.stringify(old)));
    assert.deepEqual(restored.arrivedAt, Array<number>(P).fill(0));
    const sm2 = new StateMachine(DEST, await createPartitioner(P), undefined);
    sm2.restore(restored, 10);
    sm2.plan([{ index: 11, term: 1, type: EntryType.Normal, data: activate(2) }]);
    assert.equal(sm2.ownership!.state[0], PartState.Serving);
    // And the new format round-trips the stays (snapshots, the ownership meta).
    const planned = sm.plan([{ index: 99, term: 1, type: EntryType.Normal, data: encodeOwnership({ type: 'freeze', partitions: [] }) }]);
    const meta = planned.commands.flatMap((c) => (c.type === 'ops' ? c.ops : [])).find((op) => op.type === 'set-meta' && op.name === OWNERSHIP_META);
    assert.ok(meta && meta.type === 'set-meta' && meta.value);
    assert.deepEqual(decodeOwnership(meta.value), sm.ownership);
    assert.deepEqual(decodeOwnership(encodeOwnershipState(sm.ownership!)).arrivedAt[0], 2);
  });
});
