// The registry of replicas hosted in this process (router/local-groups.ts): only a leader is
// handed requests, two clusters in one process never see each other's groups, and a removed
// replica is gone.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hostReplica, localLeader, type LocalGroupReplica } from '../../src/router/local-groups.ts';

function replica(group: number, leading: { now: boolean }): LocalGroupReplica {
  return { group, isLeader: () => leading.now, knowsLeader: () => true, local: async () => ({ kind: 'ok' }) };
}

test('the leader of a group in this cluster, if one runs here', () => {
  const clusterA = {};
  const clusterB = {};
  const aLeads = { now: false };
  const a = replica(1, aLeads);
  const b = replica(1, { now: true });
  const unhostA = hostReplica(clusterA, a);
  const unhostB = hostReplica(clusterB, b);
  assert.equal(localLeader(clusterA, 1), undefined, 'a follower is never handed requests');
  assert.equal(localLeader(clusterA, 2), undefined);
  assert.equal(localLeader(clusterB, 1), b, "cluster B's group 1");
  aLeads.now = true;
  assert.equal(localLeader(clusterA, 1), a, "cluster A's group 1, never B's");
  unhostA();
  assert.equal(localLeader(clusterA, 1), undefined, 'removed');
  unhostB();
  assert.equal(localLeader(clusterB, 1), undefined);
});

test('of two replicas of one group here (a replica added beside another), the one that leads', () => {
  const cluster = {};
  const first = { now: true };
  const second = { now: false };
  const r1 = replica(3, first);
  const r2 = replica(3, second);
  const off1 = hostReplica(cluster, r1);
  const off2 = hostReplica(cluster, r2);
  assert.equal(localLeader(cluster, 3), r1);
  first.now = false;
  second.now = true;
  assert.equal(localLeader(cluster, 3), r2);
  off1();
  off2();
});
