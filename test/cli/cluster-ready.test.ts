// The verdict `kvs up` waits for before it says ready (possibly degraded), and `kvs status` prints
// (src/cli/cluster-ready.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEGRADED_GRACE_MS, keyPerGroup, notServing, startDecision, type ReplicaStatus, type Verdict } from '../../src/cli/cluster-ready.ts';
import { createPartitioner } from '../../src/partition/index.ts';
import { routeOf, type ClusterConfig } from '../../src/placement/config.ts';
import type { StatusInfo } from '../../src/wire/index.ts';

function replica(id: number, group: number, role: StatusInfo['role'], leaderId: number, epoch: number, term = 1): ReplicaStatus {
  const status: StatusInfo = { replicaId: id, groupId: group, role, term, leaderId, leaderAddr: '', commitIndex: 5, appliedIndex: 5, epoch };
  return { id, endpoint: `127.0.0.1:${7000 + id}`, group, placement: group === 0, status };
}

const config = { epoch: 1, partitions: 8, groups: [{ id: 1, replicas: [] }, { id: 2, replicas: [] }], owner: [1, 1, 1, 1, 2, 2, 2, 2], moves: [] } as unknown as ClusterConfig;

/** Every group of 3 replicas serving, every replica knowing its leader. */
function serving(): ReplicaStatus[] {
  return [
    replica(1, 0, 'leader', 1, 0),
    replica(2, 0, 'follower', 1, 0),
    replica(3, 0, 'follower', 1, 0),
    replica(101, 1, 'leader', 101, 1),
    replica(102, 1, 'follower', 101, 1),
    replica(103, 1, 'follower', 101, 1),
    replica(201, 2, 'follower', 202, 1),
    replica(202, 2, 'leader', 202, 1),
    replica(203, 2, 'follower', 202, 1),
  ];
}

function silent(rows: ReplicaStatus[], ...ids: number[]): ReplicaStatus[] {
  return rows.map((r) => (ids.includes(r.id) ? { ...r, status: undefined } : r));
}

describe('is the cluster serving', () => {
  it('yes, fully: every replica answers, every group has a leader all its replicas know, every shard replica applied the configuration', () => {
    assert.deepEqual(notServing(serving(), config), { reasons: [], down: [] });
  });

  it('yes, degraded: a silent replica or one that does not know its leader, while a majority of its group serves', () => {
    assert.deepEqual(notServing(silent(serving(), 102), config), { reasons: [], down: [{ id: 102, endpoint: '127.0.0.1:7102', why: 'not answering' }] });
    const unaware = serving();
    unaware[6] = replica(201, 2, 'follower', 0, 1);
    assert.deepEqual(notServing(unaware, config), { reasons: [], down: [{ id: 201, endpoint: '127.0.0.1:7201', why: 'does not know its leader (202) yet' }] });
    // A placement replica too: the placement group serves from the other two.
    assert.deepEqual(notServing(silent(serving(), 3), config).reasons, []);
  });

  it('no, and says why: a group without a majority answering, without a leader, with a leader a majority does not know; a replica behind the configuration; no configuration', () => {
    const minority = notServing(silent(serving(), 102, 103), config);
    assert.deepEqual(minority.reasons, ['shard group 1: only 1 of 3 replicas answer']);
    assert.deepEqual(minority.down.map((d) => d.id), [102, 103]);

    const noLeader = serving().map((r) => (r.group === 2 ? replica(r.id, 2, 'follower', 0, 1) : r));
    assert.deepEqual(notServing(noLeader, config).reasons, ['shard group 2: no leader yet']);

    const unaware = serving();
    unaware[6] = replica(201, 2, 'follower', 0, 1);
    unaware[8] = replica(203, 2, 'follower', 0, 1);
    assert.deepEqual(notServing(unaware, config).reasons, ['shard group 2: leader 202 known by 1 of 3 replicas, not yet a majority']);

    const behind = serving();
    behind[7] = replica(202, 2, 'leader', 202, 0);
    assert.deepEqual(notServing(behind, config).reasons, ['configuration epoch 1 not applied yet by replica 202']);
    // A silent replica does not count as behind (it cannot say), only as not serving.
    assert.deepEqual(notServing(silent(serving(), 203), { ...config, epoch: 2 }).reasons, ['configuration epoch 2 not applied yet by replica 101, 102, 103, 201, 202']);

    assert.deepEqual(notServing(serving(), undefined).reasons, ['no cluster configuration yet']);
  });

  it('after an election, the leader of the newest term counts, not an old one that still says it leads', () => {
    const rows = serving().filter((r) => r.group !== 1);
    rows.push(replica(101, 1, 'leader', 101, 1, 1), replica(102, 1, 'leader', 102, 1, 2), replica(103, 1, 'follower', 102, 1, 2));
    assert.deepEqual(notServing(rows, config), { reasons: [], down: [{ id: 101, endpoint: '127.0.0.1:7101', why: 'does not know its leader (102) yet' }] });
  });
});

describe('when kvs up says ready', () => {
  const t0 = 1_000_000;
  const never = (): boolean => false;
  const decide = (v: Verdict, now: number, quorumSince: number | undefined, failed: (id: number) => boolean = never) => startDecision(v, { now, quorumSince, failedStart: failed });

  it('healthy: ready at once, not degraded', () => {
    assert.deepEqual(decide(notServing(serving(), config), t0, t0), { ready: true, degraded: [] });
  });

  it('one replica silent within the grace period: waits for it, naming it (a normal start, one replica slower)', () => {
    const v = notServing(silent(serving(), 102), config);
    assert.deepEqual(decide(v, t0, t0), { ready: false, waiting: ['replica 102 at 127.0.0.1:7102 not answering'] });
    assert.deepEqual(decide(v, t0 + DEGRADED_GRACE_MS - 1, t0), { ready: false, waiting: ['replica 102 at 127.0.0.1:7102 not answering'] });
  });

  it('one replica silent past the grace period: ready, degraded, naming it', () => {
    const v = notServing(silent(serving(), 102), config);
    assert.deepEqual(decide(v, t0 + DEGRADED_GRACE_MS, t0), { ready: true, degraded: [{ id: 102, endpoint: '127.0.0.1:7102', why: 'not answering' }] });
  });

  it('one replica silent that already failed a start: ready, degraded, without waiting out the grace period', () => {
    const v = notServing(silent(serving(), 102, 3), config);
    // Only the one that failed is not waited for; the other silent one still is, within the grace period.
    assert.deepEqual(decide(v, t0, t0, (id) => id === 102), { ready: false, waiting: ['replica 3 at 127.0.0.1:7003 not answering'] });
    assert.deepEqual(decide(v, t0, t0, (id) => id === 102 || id === 3), {
      ready: true,
      degraded: [
        { id: 3, endpoint: '127.0.0.1:7003', why: 'not answering' },
        { id: 102, endpoint: '127.0.0.1:7102', why: 'not answering' },
      ],
    });
  });

  it('a group without a quorum: never ready, however long and whatever failed', () => {
    const v = notServing(silent(serving(), 102, 103), config);
    const d = decide(v, t0 + 10 * DEGRADED_GRACE_MS, t0, () => true);
    assert.deepEqual(d, { ready: false, waiting: ['shard group 1: only 1 of 3 replicas answer', 'replica 102 at 127.0.0.1:7102 not answering', 'replica 103 at 127.0.0.1:7103 not answering'] });
    // Nor before quorum readiness has been seen at all.
    assert.equal(decide(notServing(silent(serving(), 102), config), t0 + 10 * DEGRADED_GRACE_MS, undefined).ready, false);
  });
});

describe('the write through every door', () => {
  it('finds a key each shard group owns, for the write through every group', async () => {
    const partitioner = await createPartitioner(config.partitions);
    const keys = keyPerGroup(config, partitioner, 'probe-');
    assert.deepEqual([...keys.keys()].sort(), [1, 2]);
    for (const [g, key] of keys) assert.equal(routeOf(config, partitioner.partitionOf(Buffer.from(key))).group, g);
  });
});
