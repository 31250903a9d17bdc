// The verdict `kvs up` waits for before it says ready, and `kvs status` prints (src/cli/cluster-ready.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { keyPerGroup, notServing, type ReplicaStatus } from '../../src/cli/cluster-ready.ts';
import { createPartitioner } from '../../src/partition/index.ts';
import { routeOf, type ClusterConfig } from '../../src/placement/config.ts';
import type { StatusInfo } from '../../src/wire/index.ts';

function replica(id: number, group: number, role: StatusInfo['role'], leaderId: number, epoch: number): ReplicaStatus {
  const status: StatusInfo = { replicaId: id, groupId: group, role, term: 1, leaderId, leaderAddr: '', commitIndex: 5, appliedIndex: 5, epoch };
  return { endpoint: `127.0.0.1:${7000 + id}`, group, placement: group === 0, status };
}

const config = { epoch: 1, partitions: 8, groups: [{ id: 1, replicas: [] }, { id: 2, replicas: [] }], owner: [1, 1, 1, 1, 2, 2, 2, 2], moves: [] } as unknown as ClusterConfig;

function serving(): ReplicaStatus[] {
  return [replica(1, 0, 'leader', 1, 0), replica(2, 0, 'follower', 1, 0), replica(101, 1, 'leader', 101, 1), replica(102, 1, 'follower', 101, 1), replica(201, 2, 'follower', 202, 1), replica(202, 2, 'leader', 202, 1)];
}

describe('is the cluster serving', () => {
  it('yes: every replica answers, every group has a leader all its replicas know, every shard replica applied the configuration', () => {
    assert.deepEqual(notServing(serving(), config), []);
  });

  it('no, and says why: a silent replica, a group without a leader or with a replica that does not know it, a replica behind the configuration, no configuration', () => {
    const rows = serving();
    rows[3] = { ...rows[3]!, status: undefined };
    assert.deepEqual(notServing(rows, config), ['not answering yet: 127.0.0.1:7102']);

    const noLeader = serving().map((r) => (r.group === 2 ? replica(r.status!.replicaId, 2, 'follower', 0, 1) : r));
    assert.deepEqual(notServing(noLeader, config), ['shard group 2: no leader yet']);

    const unaware = serving();
    unaware[4] = replica(201, 2, 'follower', 0, 1);
    assert.deepEqual(notServing(unaware, config), ['shard group 2: not every replica knows its leader (202) yet']);

    const behind = serving();
    behind[5] = replica(202, 2, 'leader', 202, 0);
    assert.deepEqual(notServing(behind, config), ['configuration epoch 1 not applied yet by replica 202']);

    assert.deepEqual(notServing(serving(), undefined), ['no cluster configuration yet']);
  });

  it('finds a key each shard group owns, for the write through every group', async () => {
    const partitioner = await createPartitioner(config.partitions);
    const keys = keyPerGroup(config, partitioner, 'probe-');
    assert.deepEqual([...keys.keys()].sort(), [1, 2]);
    for (const [g, key] of keys) assert.equal(routeOf(config, partitioner.partitionOf(Buffer.from(key))).group, g);
  });
});
