// A replica restarted on its data finds its group from the membership it has stored, not from
// --replicas (which only seeds a fresh group): replicas added later with --join (as a grown
// StatefulSet's pods are) are restarted with only themselves in --replicas, and one of the original
// replicas with its stale boot list. Each rejoins and catches up, and with the original replicas
// partly down the group still has a quorum of linked replicas, a leader, and commits writes.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { changeGroupMembership } from '../../src/membership/admin-client.ts';
import { groupOf } from '../../src/placement/config.ts';
import { readConfig } from '../../src/resharding/admin.ts';
import type { StatusInfo } from '../../src/wire/index.ts';
import { AckedWriter, assertAllReadable } from '../resharding/acked-writer.ts';
import { ShardedCluster } from '../resharding/cluster.ts';
import { waitFor } from '../support/wait.ts';

const GROUP = 1;
const BASE = 27200;
const added = [
  { id: 104, address: `127.0.0.1:${BASE + 13}` },
  { id: 105, address: `127.0.0.1:${BASE + 14}` },
];
const addressOf = (id: number): string => (id < 104 ? `127.0.0.1:${BASE + GROUP * 10 + (id - 101)}` : added.find((a) => a.id === id)!.address);

/** The leader of group 1 among `ids`, once one of them answers as leader. */
function leaderAmong(c: ShardedCluster, ids: number[], timeoutMs = 60_000): Promise<StatusInfo> {
  return waitFor(`a leader of group ${GROUP} among ${ids.join(', ')}`, async () => {
    for (const id of ids) {
      const s = await c.status(addressOf(id));
      if (s?.role === 'leader') return s;
    }
    return undefined;
  }, timeoutMs);
}

/** Waits until replica `id` follows `leader`'s leadership and has applied what it had committed. */
async function caughtUp(c: ShardedCluster, id: number, alive: number[]): Promise<void> {
  const leader = await leaderAmong(c, alive);
  await waitFor(`replica ${id} to follow the leader and catch up`, async () => {
    const s = await c.status(addressOf(id));
    return s && s.leaderId === leader.replicaId && s.appliedIndex >= leader.commitIndex ? s : undefined;
  }, 60_000);
}

describe('a restarted replica finds its group from its stored membership', () => {
  const clusters: ShardedCluster[] = [];
  after(async () => {
    await Promise.all(clusters.map((c) => c.stop()));
  });

  it('added replicas restarted alone and an original one with a stale list rejoin; the group keeps a quorum', async () => {
    const c = new ShardedCluster(BASE, 3);
    clusters.push(c);
    await c.start(1, 16);
    const client = c.client(30_000);
    const writer = new AckedWriter(client, 'r');
    writer.start();
    try {
      for (const a of added) {
        c.spawnJoiner(GROUP, a.id, a.address);
        await changeGroupMembership(c.placement(), { op: 'add', group: GROUP, replicaId: a.id, address: a.address }, 60_000);
      }
      assert.deepEqual(groupOf((await readConfig(c.placement()))!, GROUP)!.replicas.map((r) => r.id), [101, 102, 103, 104, 105]);

      // Both added replicas killed and restarted with only themselves in --replicas.
      for (const a of added) {
        await c.kill(a.id);
        c.restart(GROUP, a.id, a.address);
        await caughtUp(c, a.id, [101, 102, 103]);
      }

      // Two of the original three down: 103, 104, 105 are 3 of 5 voters and must commit alone.
      await c.kill(101);
      await c.kill(102);
      const leader = await leaderAmong(c, [103, 104, 105]);
      const before = writer.acked.size;
      await waitFor('writes acknowledged with 101 and 102 down', () => writer.acked.size >= before + 20, 60_000);

      // 101 restarted with its stale boot list (101, 102, 103): the stored membership (five
      // voters) wins, so it links to 104 and 105 too and follows the current leader.
      c.restart(GROUP, 101, addressOf(101), [101, 102, 103].map((id) => ({ id, address: addressOf(id) })));
      await caughtUp(c, 101, [103, 104, 105]);
      // With 103 down as well, 101, 104 and 105 are the quorum: only possible if 101 links to them.
      await c.kill(103);
      await leaderAmong(c, [101, 104, 105]);
      const before2 = writer.acked.size;
      await waitFor('writes acknowledged with 102 and 103 down', () => writer.acked.size >= before2 + 20, 60_000);
      assert.ok(leader.term > 0);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${[...c.logs].map(([id, l]) => `--- ${id}\n${l.join('').slice(-3000)}`).join('\n')}`, { cause: e });
    } finally {
      await writer.stop();
    }
    await assertAllReadable(client, writer.acked);
    client.close();
    await c.stop();
  });
});
