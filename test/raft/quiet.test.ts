// Quiet groups: an idle leader heartbeats once per election timeout, its followers wait
// QUIET_FACTOR election timeouts, and any work brings the normal rhythm back.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { QUIET_FACTOR, defaultRaftConfig } from '../../src/raft/node.ts';
import { MsgType, type Message } from '../../src/raft/types.ts';
import { Cluster, put } from './harness.ts';

const E = defaultRaftConfig.electionTicks;
const QUIET_AFTER = 5;

const heartbeats = (msgs: Message[]): Message[] => msgs.filter((m) => m.type === MsgType.Heartbeat);

/** A 3-node cluster whose leader has gone quiet. */
function quietCluster() {
  const c = new Cluster([1, 2, 3], { quietAfterTicks: QUIET_AFTER });
  const leader = c.electLeader();
  c.tickAll(QUIET_AFTER + 2);
  return { c, leader };
}

describe('quiet groups', () => {
  it('an idle leader goes quiet, tells its followers, and heartbeats once per election timeout', () => {
    const { c, leader } = quietCluster();
    for (const n of c.nodes.values()) assert.equal(n.status.quiet, true, `node ${n.id} quiet`);
    c.sent = [];
    c.tickAll(10 * E);
    const hb = heartbeats(c.sent);
    // One round per election timeout, to each of the two followers (the normal rhythm: one per tick).
    assert.ok(hb.length >= 2 * 9 && hb.length <= 2 * 11, `${hb.length} heartbeats in ${10 * E} ticks`);
    assert.ok(hb.every((m) => m.from === leader.id && m.type === MsgType.Heartbeat && m.quiet));
    assert.equal(c.leaders().length, 1);
  });

  it('never goes quiet with quietAfterTicks 0', () => {
    const c = new Cluster([1, 2, 3], { quietAfterTicks: 0 });
    c.electLeader();
    c.sent = [];
    c.tickAll(5 * E);
    assert.equal(heartbeats(c.sent).length, 2 * 5 * E);
    for (const n of c.nodes.values()) assert.equal(n.status.quiet, false);
  });

  it('a proposal wakes the group: appends at once, normal heartbeats after, quiet again when idle', () => {
    const { c, leader } = quietCluster();
    const r = leader.propose(put('k', 'v'));
    assert.ok(r.ok);
    c.settle();
    for (const n of c.nodes.values()) assert.equal(n.status.quiet, false, `node ${n.id} awake`);
    assert.equal(leader.status.commit, r.index);
    c.sent = [];
    c.tickAll(3);
    for (const n of c.nodes.values()) assert.equal(n.status.commit, r.index, 'followers learn the commit');
    assert.equal(heartbeats(c.sent).length, 6, 'one heartbeat per tick per follower again');
    c.tickAll(QUIET_AFTER + 1);
    for (const n of c.nodes.values()) assert.equal(n.status.quiet, true);
  });

  it('followers of a quiet leader ride out lost heartbeats that would start an election otherwise', () => {
    for (const quietAfterTicks of [QUIET_AFTER, 0]) {
      const c = new Cluster([1, 2, 3], { quietAfterTicks, seed: 7 });
      const leader = c.electLeader();
      c.tickAll(QUIET_AFTER + 2);
      const term = leader.status.term;
      // Two election timeouts without a heartbeat reaching anyone.
      c.filter = (m) => m.type !== MsgType.Heartbeat;
      c.tickAll(2 * E);
      c.heal();
      c.tickAll(E);
      const same = [...c.nodes.values()].every((n) => n.status.term === term);
      assert.equal(same, quietAfterTicks > 0, `quietAfterTicks ${quietAfterTicks}: term ${term} kept = ${same}`);
      assert.equal(c.leaders().length, 1);
    }
  });

  it('a quiet leader cut off steps down, and the others elect a leader within the quiet timeout', () => {
    const { c, leader } = quietCluster();
    const old = leader.id;
    c.isolate(old);
    let stepDown = -1;
    let elected = -1;
    for (let t = 1; t <= 3 * QUIET_FACTOR * E && (stepDown < 0 || elected < 0); t++) {
      c.tickAll();
      if (stepDown < 0 && c.node(old).status.role !== 'leader') stepDown = t;
      if (elected < 0 && c.leaders().some((n) => n.id !== old)) elected = t;
    }
    // CheckQuorum over the quiet window (it may have just started: up to two windows).
    assert.ok(stepDown > 0 && stepDown <= 2 * QUIET_FACTOR * E, `old leader stepped down at tick ${stepDown}`);
    // A randomized timeout in [QF·E, 2·QF·E) plus the election.
    assert.ok(elected >= QUIET_FACTOR * E - E && elected <= 2 * QUIET_FACTOR * E + E, `new leader at tick ${elected}`);
    c.heal();
    c.tickAll(2 * E);
    assert.equal(c.leaders().length, 1);
    const now = c.leaders()[0]!;
    assert.ok(now.propose(put('after', 'x')).ok);
    c.tickAll(2);
    for (const n of c.nodes.values()) assert.equal(n.status.commit, now.status.lastIndex);
  });

  it('serves reads while quiet without waking', () => {
    const { c, leader } = quietCluster();
    leader.readIndex(new TextEncoder().encode('r1'));
    c.settle();
    assert.deepEqual(c.reads.get(leader.id), [{ ctx: 'r1', index: leader.status.commit }]);
    const follower = [...c.nodes.values()].find((n) => n.id !== leader.id)!;
    follower.readIndex(new TextEncoder().encode('r2'));
    c.settle();
    assert.deepEqual(c.reads.get(follower.id), [{ ctx: 'r2', index: leader.status.commit }]);
    c.tickAll();
    assert.equal(leader.status.quiet, true);
  });

  it('stays awake while a follower lags, and goes quiet once it has caught up', () => {
    const c = new Cluster([1, 2, 3], { quietAfterTicks: QUIET_AFTER });
    const leader = c.electLeader();
    const lagging = [...c.nodes.keys()].find((id) => id !== leader.id)!;
    c.isolate(lagging);
    assert.ok(leader.propose(put('a', '1')).ok);
    c.tickAll(5 * QUIET_AFTER);
    assert.equal(leader.status.quiet, false, 'a follower is behind');
    c.heal();
    c.tickAll(QUIET_AFTER + 2);
    assert.equal(leader.status.quiet, true);
    assert.equal(c.node(lagging).status.commit, leader.status.commit);
  });

  it('a transfer wakes the leader and completes', () => {
    const { c, leader } = quietCluster();
    const to = [...c.nodes.keys()].find((id) => id !== leader.id)!;
    assert.ok(leader.transferLeadership(to));
    assert.equal(leader.status.quiet, false);
    c.settle();
    c.tickAll(2);
    assert.equal(c.node(to).status.role, 'leader');
  });
});
