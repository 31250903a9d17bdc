// Live resharding with real processes, under concurrent reads and writes from several clients:
// afterwards every acknowledged write is readable with its latest value and the recorded history
// is linearizable (two groups serving one key at once would break it: clients write through
// replicas of different groups). Then the same with leaders killed mid-hand-off.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { readConfig, startReshard, waitForMoves } from '../../src/resharding/admin.ts';
import { Workload, assertLinearizable } from '../server/workload.ts';
import { AckedWriter, assertAllReadable } from './acked-writer.ts';
import { PLACEMENT, ShardedCluster } from './cluster.ts';

const dec = new TextDecoder();

async function reshardTo(c: ShardedCluster, ids: number[]): Promise<void> {
  const cfg = await startReshard(c.placement(), c.shardGroups(ids));
  await waitForMoves(c.placement(), cfg.moves.length, undefined, 120_000);
}

describe('live resharding', () => {
  // Every cluster a test started, stopped here even when the test failed before its own stop().
  const clusters: ShardedCluster[] = [];
  after(async () => {
    await Promise.all(clusters.map((c) => c.stop()));
  });

  it('3 → 4 → 2 → 3 groups under concurrent load: nothing lost, history linearizable', async () => {
    const c = new ShardedCluster(24100, 1);
    clusters.push(c);
    await c.start(3, 64);
    const clients = Array.from({ length: 4 }, () => c.client());
    const w = new Workload(clients, ['a', 'b', 'c', 'd', 'e', 'f'], 1);
    const writer = new AckedWriter(c.client(), 'w', 3);
    w.start();
    writer.start();
    let history;
    try {
      c.startGroup(4);
      await c.waitForLeader(4);
      await reshardTo(c, [1, 2, 3, 4]);
      await reshardTo(c, [1, 2]);
      const drained = await readConfig(c.placement());
      assert.deepEqual(
        drained!.groups.map((g) => g.id),
        [1, 2],
        'removed groups must be released once drained',
      );
      await c.stopGroup(3);
      await c.stopGroup(4);
      c.startGroup(5);
      await c.waitForLeader(5);
      await reshardTo(c, [1, 2, 5]);
    } finally {
      history = await w.stop(); // always: a failure must not leave the clients running
      await writer.stop();
    }
    const final = await readConfig(c.placement());
    assert.deepEqual(new Set(final!.owner), new Set([1, 2, 5]));
    assert.equal(final!.moves.length, 0);
    assertLinearizable(history, 'resharding');
    const reader = c.client();
    try {
      await assertAllReadable(reader, writer.acked);
      // A scan fans out to every group and merges: it sees every acknowledged key, in order.
      const scanned: string[] = [];
      for await (const kv of reader.scanAll('w-', 'w.', { pageSize: 100 })) scanned.push(dec.decode(kv.key));
      assert.deepEqual(scanned, [...scanned].sort(), 'scan out of key order');
      for (const [key, value] of writer.acked) assert.equal(scanned.includes(key), value !== null, value === null ? `scan shows deleted ${key}` : `scan misses ${key}`);
      assert.ok([...writer.acked.values()].filter((v) => v === null).length > 10, 'deletes were acknowledged during the moves');
      // A count asks every group: each key is counted once, by the group that serves it.
      let all = 0;
      for await (const kv of reader.scanAll('', null, { pageSize: 1000 })) all += kv.key.length > 0 ? 1 : 0;
      assert.equal(await reader.count(), all);
    } finally {
      reader.close();
      for (const cl of clients) cl.close();
    }
    await c.stop();
  });

  it('survives kill -9 of the source and destination leaders mid-hand-off, and of the placement leader', async () => {
    const c = new ShardedCluster(24300, 3);
    clusters.push(c);
    await c.start(2, 64);
    const loader = c.client();
    await Promise.all(Array.from({ length: 400 }, (_, i) => loader.put(`pre-${i}`, `p${i}`)));
    const preloaded = new Map(Array.from({ length: 400 }, (_, i) => [`pre-${i}`, `p${i}`] as const));
    const clients = Array.from({ length: 3 }, () => c.client(15_000));
    const w = new Workload(clients, ['x', 'y', 'z'], 2);
    const writer = new AckedWriter(c.client(15_000));
    w.start();
    writer.start();
    let history;
    try {
      c.startGroup(3);
      await c.waitForLeader(3);
      const cfg = await startReshard(c.placement(), c.shardGroups([1, 2, 3]));
      assert.ok(cfg.moves.length > 0);
      // Mid-hand-off: the destination's and a source's leaders, then the placement leader.
      await new Promise((r) => setTimeout(r, 150));
      const dest = await c.waitForLeader(3);
      const src = await c.waitForLeader(cfg.moves[0]!.from);
      await c.kill(dest.replicaId);
      await c.kill(src.replicaId);
      const place = await c.waitForLeader(PLACEMENT);
      await c.kill(place.replicaId);
      await new Promise((r) => setTimeout(r, 1000));
      c.spawn(3, dest.replicaId);
      c.spawn(cfg.moves[0]!.from, src.replicaId);
      c.spawn(PLACEMENT, place.replicaId);
      await waitForMoves(c.placement(), cfg.moves.length, undefined, 120_000);
    } finally {
      history = await w.stop();
      await writer.stop();
    }
    assertLinearizable(history, 'resharding with leader kills');
    try {
      await assertAllReadable(loader, writer.acked);
      await assertAllReadable(loader, preloaded);
    } finally {
      loader.close();
      for (const cl of clients) cl.close();
    }
  });
});
