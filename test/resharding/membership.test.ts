// Adding and removing replicas of a shard group with real processes, under a stream of writes:
// a replica started with --join stays quiet until added, catches up as a learner, serves reads,
// is listed in the placement configuration; an old follower and then the leader are removed, and
// with both removed processes killed the group still commits (they no longer count in its quorum).
// No acknowledged write is lost.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { KvsClient } from '../../src/client/client.ts';
import { changeGroupMembership } from '../../src/membership/admin-client.ts';
import { createPartitioner } from '../../src/partition/index.ts';
import { groupOf, type ClusterConfig } from '../../src/placement/config.ts';
import { readConfig } from '../../src/resharding/admin.ts';
import type { StatusInfo } from '../../src/wire/index.ts';
import { AckedWriter, assertAllReadable } from './acked-writer.ts';
import { ShardedCluster } from './cluster.ts';
import { waitFor } from '../support/wait.ts';

const dec = new TextDecoder();
const GROUP = 1;
const NEW_ID = 104;
const NEW_ADDRESS = '127.0.0.1:27013';

/** The leader of group `g` among the replicas the placement configuration lists now. */
async function groupLeader(c: ShardedCluster, g: number): Promise<StatusInfo> {
  return waitFor(`a leader of group ${g}`, async () => {
    for (const r of groupOf((await readConfig(c.placement()))!, g)!.replicas) {
      const s = await c.status(r.address);
      if (s?.role === 'leader') return s;
    }
    return undefined;
  }, 30_000);
}

function replicaIds(c: ClusterConfig | undefined, g: number): number[] {
  return (c && groupOf(c, g)?.replicas.map((r) => r.id).sort((a, b) => a - b)) ?? [];
}

describe('adding and removing replicas of a shard group', () => {
  // Every cluster a test started, stopped here even when the test failed before its own stop().
  const clusters: ShardedCluster[] = [];
  after(async () => {
    await Promise.all(clusters.map((c) => c.stop()));
  });

  it('adds a --join replica, removes a follower and the leader, under writes, losing nothing', async () => {
    const c = new ShardedCluster(27000, 3);
    clusters.push(c);
    await c.start(2, 64);
    const writerClient = c.client(15_000);
    const writer = new AckedWriter(writerClient, 'm');
    const before = (await readConfig(c.placement()))!;
    // Keys group 1 owns, to read from the new replica itself (other keys would be relayed).
    const partitioner = await createPartitioner(before.partitions);
    const ours = (k: string): boolean => before.owner[partitioner.partitionOf(new TextEncoder().encode(k))] === GROUP;
    writer.start();
    let removedFollower = 0;
    let removedLeader = 0;
    try {
      // 1. A joining replica never campaigns and does not disturb the group.
      const leader0 = await groupLeader(c, GROUP);
      c.spawnJoiner(GROUP, NEW_ID, NEW_ADDRESS);
      await waitFor('the joiner to listen', () => c.status(NEW_ADDRESS), 30_000);
      await new Promise((r) => setTimeout(r, 2000)); // several election timeouts
      const quiet = (await c.status(NEW_ADDRESS))!;
      assert.equal(quiet.role, 'follower', 'a joining replica must not campaign');
      assert.equal(quiet.term, 0, 'a joining replica must not raise its term');
      assert.equal((await groupLeader(c, GROUP)).term, leader0.term, 'the group kept its leader and term');

      // 2. Add it: learner, catch up, listed in the placement configuration, promoted.
      await changeGroupMembership(c.placement(), { op: 'add', group: GROUP, replicaId: NEW_ID, address: NEW_ADDRESS }, 60_000);
      const added = (await readConfig(c.placement()))!;
      assert.deepEqual(replicaIds(added, GROUP), [101, 102, 103, NEW_ID]);
      assert.ok(added.epoch > before.epoch, 'a replica-list change bumps the epoch');
      assert.equal(groupOf(added, GROUP)!.replicas.find((r) => r.id === NEW_ID)!.address, NEW_ADDRESS);
      const leader = await groupLeader(c, GROUP);
      await waitFor('the new replica to apply what the leader had committed', async () => {
        const s = await c.status(NEW_ADDRESS);
        return s && s.appliedIndex >= leader.commitIndex && s.leaderId === leader.leaderId ? s : undefined;
      }, 30_000);
      const fromNew = new KvsClient({ endpoints: [NEW_ADDRESS], timeoutMs: 10_000 });
      try {
        const sample = [...writer.acked].filter(([k]) => ours(k)).slice(0, 50);
        assert.ok(sample.length > 0, 'no acknowledged write of group 1 yet');
        for (const [k, v] of sample) {
          assert.equal(dec.decode((await fromNew.get(k, { consistency: 'stale' }))!), v, `stale read of ${k} from the new replica`);
          assert.equal(dec.decode((await fromNew.get(k))!), v, `linearizable read of ${k} from the new replica`);
        }
        await fromNew.put('via-new', 'x'); // a write through it (forwarded to the leader)
        assert.equal(dec.decode((await fromNew.get('via-new'))!), 'x');
      } finally {
        fromNew.close();
      }

      // 2b. Adding a replica that is already a voter, the leader itself included, is a check that a
      // rebalance makes before removing (src/cli/spread-group.ts): answered at once, nothing changes.
      const epochNow = (await readConfig(c.placement()))!.epoch;
      const voterLeader = await groupLeader(c, GROUP);
      for (const r of groupOf(added, GROUP)!.replicas) {
        const t0 = Date.now();
        await changeGroupMembership(c.placement(), { op: 'add', group: GROUP, replicaId: r.id, address: r.address }, 10_000);
        assert.ok(Date.now() - t0 < 10_000, `adding voter ${r.id} again (leader ${voterLeader.replicaId})`);
      }
      assert.equal((await readConfig(c.placement()))!.epoch, epochNow, 'adding a listed voter again changes no configuration');

      // 3. Remove a follower of the original three.
      const l1 = await groupLeader(c, GROUP);
      removedFollower = [101, 102, 103].find((id) => id !== l1.replicaId)!;
      await changeGroupMembership(c.placement(), { op: 'remove', group: GROUP, replicaId: removedFollower, address: '' }, 60_000);
      assert.deepEqual(
        replicaIds(await readConfig(c.placement()), GROUP),
        [101, 102, 103, NEW_ID].filter((id) => id !== removedFollower),
      );

      // 4. Remove the leader: it hands leadership over first.
      const l2 = await groupLeader(c, GROUP);
      removedLeader = l2.replicaId;
      await changeGroupMembership(c.placement(), { op: 'remove', group: GROUP, replicaId: removedLeader, address: '' }, 60_000);
      const final = (await readConfig(c.placement()))!;
      const remaining = [101, 102, 103, NEW_ID].filter((id) => id !== removedFollower && id !== removedLeader);
      assert.deepEqual(replicaIds(final, GROUP), remaining);
      const l3 = await groupLeader(c, GROUP);
      assert.ok(remaining.includes(l3.replicaId), `the new leader ${l3.replicaId} is one of the remaining replicas`);
    } finally {
      await writer.stop();
    }

    // 5. The removed replicas no longer count: with both killed, the remaining two still commit
    //    (were they still voters, 2 of 4 would be no quorum).
    await c.kill(removedFollower);
    await c.kill(removedLeader);
    const remainingAddrs = groupOf((await readConfig(c.placement()))!, GROUP)!.replicas.map((r) => r.address);
    const after2 = new KvsClient({ endpoints: remainingAddrs, timeoutMs: 20_000 });
    try {
      const keys = Array.from({ length: 200 }, (_, i) => `after-${i}`).filter(ours).slice(0, 20);
      assert.ok(keys.length > 0);
      for (const k of keys) await after2.put(k, 'v');
      for (const k of keys) assert.equal(dec.decode((await after2.get(k))!), 'v');
      const st = await Promise.all(remainingAddrs.map((a) => c.status(a)));
      assert.ok(st.every((s): s is StatusInfo => s !== undefined && s.groupId === GROUP));

      // 6. Nothing acknowledged is lost.
      await assertAllReadable(after2, writer.acked);
    } finally {
      after2.close();
      writerClient.close();
    }
    await c.stop();
  });
});
