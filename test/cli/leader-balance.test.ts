// nextTransfer (src/cli/leader-balance.ts): moves a leadership from a host leading 2 or more
// groups more than another to that host, never within a group that has no replica there, and
// repeated application reaches a spread of at most 1 from any start; with a placement group, the
// shard groups' leaders are spread first, counted without it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { balanceLeaders, nextTransfer, placesOf, settleLeaders, type AskedMove, type ReplicaPlace } from '../../src/cli/leader-balance.ts';
import type { StatusInfo } from '../../src/wire/index.ts';

/** `groups` groups of one replica per host; `leaderHost[g]`: where group g leads. */
function layout(hosts: number, leaderHost: number[]): ReplicaPlace[] {
  return leaderHost.flatMap((lh, g) => Array.from({ length: hosts }, (_, h) => ({ id: g * 100 + h + 1, group: g, host: h, leader: h === lh })));
}

function spread(rs: ReplicaPlace[], hosts: number): number {
  const leads = Array.from({ length: hosts }, (_, h) => rs.filter((r) => r.leader && r.host === h).length);
  return Math.max(...leads) - Math.min(...leads);
}

test('balanced or nearly (spread ≤ 1): nothing moves', () => {
  assert.equal(nextTransfer(layout(3, [0, 1, 2, 0]), 3), undefined);
  assert.equal(nextTransfer(layout(3, [0, 1, 2]), 3), undefined);
  assert.equal(nextTransfer(layout(3, [0, 0, 1, 2]), 3), undefined);
});

test('all four groups led by host 0: the lowest group moves to an idle host', () => {
  assert.deepEqual(nextTransfer(layout(3, [0, 0, 0, 0]), 3), { from: 1, to: 2 });
});

test('from any start, applying the transfers ends with a spread ≤ 1 within a few moves', () => {
  for (const hosts of [2, 3, 5]) {
    for (let seed = 0; seed < 200; seed++) {
      const groups = 1 + (seed % 7);
      let rs = layout(hosts, Array.from({ length: groups }, (_, g) => (seed * 31 + g * g * 7) % hosts));
      for (let moves = 0; ; moves++) {
        const t = nextTransfer(rs, hosts);
        if (!t) break;
        assert.ok(moves < groups, `more moves than groups (hosts ${hosts}, seed ${seed})`);
        const from = rs.find((r) => r.id === t.from)!;
        const to = rs.find((r) => r.id === t.to)!;
        assert.equal(from.group, to.group);
        assert.ok(from.leader && !to.leader);
        rs = rs.map((r) => (r.id === t.from ? { ...r, leader: false } : r.id === t.to ? { ...r, leader: true } : r));
      }
      assert.ok(spread(rs, hosts) <= 1, `spread ${spread(rs, hosts)} (hosts ${hosts}, seed ${seed})`);
    }
  }
});

/** As `layout`, group 0 the placement group. */
function sharded(hosts: number, leaderHost: number[]): ReplicaPlace[] {
  return layout(hosts, leaderHost).map((r) => ({ ...r, placement: r.group === 0 }));
}

function shardSpread(rs: ReplicaPlace[], hosts: number): number {
  return spread(rs.filter((r) => !r.placement), hosts);
}

test('the placement leader does not count as a shard leader: two shard leaders on one host, none on another, move', () => {
  // Counted together, host 0 (placement), host 1 (shard 1) and host 2 (shards 2 and 3) had a spread of 1.
  assert.deepEqual(nextTransfer(sharded(3, [0, 1, 2, 2]), 3), { from: 203, to: 201 });
  // Shards balanced, the placement leader anywhere: nothing moves.
  assert.equal(nextTransfer(sharded(3, [0, 0, 1, 2]), 3), undefined);
  assert.equal(nextTransfer(sharded(3, [2, 0, 1, 2]), 3), undefined);
});

test('with a placement group, from any start: shard leaders spread ≤ 1, all leaders spread ≤ 1, within fewer moves than groups', () => {
  for (const hosts of [2, 3, 5]) {
    for (let seed = 0; seed < 200; seed++) {
      const groups = 2 + (seed % 7);
      let rs = sharded(hosts, Array.from({ length: groups }, (_, g) => (seed * 31 + g * g * 7) % hosts));
      for (let moves = 0; ; moves++) {
        const t = nextTransfer(rs, hosts);
        if (!t) break;
        assert.ok(moves < groups, `more moves than groups (hosts ${hosts}, seed ${seed})`);
        rs = rs.map((r) => (r.id === t.from ? { ...r, leader: false } : r.id === t.to ? { ...r, leader: true } : r));
      }
      assert.ok(shardSpread(rs, hosts) <= 1, `shard spread ${shardSpread(rs, hosts)} (hosts ${hosts}, seed ${seed})`);
      assert.ok(spread(rs, hosts) <= 1, `spread ${spread(rs, hosts)} (hosts ${hosts}, seed ${seed})`);
    }
  }
});

test('placesOf keeps which replicas are the placement group\'s', () => {
  const status = (id: number, role: 'leader' | 'follower'): StatusInfo => ({ replicaId: id, groupId: Math.floor(id / 100), role, term: 3, leaderId: id, leaderAddr: '', commitIndex: 0, appliedIndex: 0, epoch: 1 });
  const places = placesOf(
    [
      { id: 1, group: 0, placement: true, status: status(1, 'leader') },
      { id: 101, group: 1, placement: false, status: status(101, 'leader') },
    ],
    { hostOf: (id) => id % 100 },
  );
  assert.deepEqual(
    places.map((p) => [p.id, p.placement]),
    [
      [1, true],
      [101, false],
    ],
  );
});

test('a group with no replica on the idle host is skipped for one that has one', () => {
  const rs: ReplicaPlace[] = [
    { id: 1, group: 0, host: 0, leader: true },
    { id: 2, group: 0, host: 1, leader: false },
    { id: 11, group: 1, host: 0, leader: true },
    { id: 13, group: 1, host: 2, leader: false },
    { id: 22, group: 2, host: 1, leader: true },
  ];
  assert.deepEqual(nextTransfer(rs, 3), { from: 11, to: 13 });
});

test('balanceLeaders backs off while nothing changes, and starts over when a leader changes', async () => {
  // Rounds see: the same balanced leaders 4 times, then a new leader (a failover), then the same.
  const seen = [[1], [1], [1], [1], [2], [2], [2]];
  const pauses: number[] = [];
  let round = 0;
  await balanceLeaders({
    hosts: 3,
    everyMs: 100,
    maxEveryMs: 400,
    stopped: () => round >= seen.length,
    leadAway: () => assert.fail('balanced: nothing to move'),
    places: async () => seen[round++]!.map((id) => ({ id, group: 1, host: 0, leader: true })),
    sleep: async (ms) => void pauses.push(ms),
  });
  assert.deepEqual(pauses, [100, 100, 200, 400, 400, 100, 200]);
});

test('settling before "ready": one move at a time, each given time to show, then done or out of time', () => {
  const opts = { since: 0, limitMs: 10_000, showMs: 2000 };
  // Host 0 leads all three groups: ask for the first move.
  let led = layout(3, [0, 0, 0]);
  const first = settleLeaders(led, 3, { ...opts, now: 100, asked: undefined });
  assert.deepEqual(first.move, { from: 1, to: 2 });
  assert.match(first.waiting!, /group 0/);
  // 200 ms later the old leader still leads: no second request, still waiting.
  const showing = settleLeaders(led, 3, { ...opts, now: 300, asked: first.asked });
  assert.equal(showing.move, undefined);
  assert.ok(showing.waiting);
  assert.deepEqual(showing.asked, first.asked);
  // Not shown within showMs: asked again (a lost command or a refused transfer).
  const again = settleLeaders(led, 3, { ...opts, now: 2200, asked: first.asked });
  assert.deepEqual(again.move, { from: 1, to: 2 });
  // It moved: the next move is asked for at once.
  led = layout(3, [1, 0, 0]);
  const second = settleLeaders(led, 3, { ...opts, now: 2300, asked: again.asked });
  assert.deepEqual(second.move, { from: 101, to: 103 });
  // Spread ≤ 1: settled, nothing to wait for.
  const done = settleLeaders(layout(3, [1, 2, 0]), 3, { ...opts, now: 2400, asked: second.asked });
  assert.deepEqual(done, {});
  // Out of time: "ready" is not held up by a spread that will not settle.
  const asked: AskedMove = { from: 1, group: 0, at: 8000 };
  assert.deepEqual(settleLeaders(layout(3, [0, 0, 0]), 3, { ...opts, now: 10_000, asked }), {});
});

test('settling before "ready": out of time, a move asked for just before still gets its time to show', () => {
  const opts = { since: 0, limitMs: 10_000, showMs: 2000 };
  const asked: AskedMove = { from: 1, group: 0, at: 9500 };
  // Its hand-over would land right after "ready" (or in the write through every door): wait for it.
  const late = settleLeaders(layout(3, [0, 0, 0]), 3, { ...opts, now: 10_200, asked });
  assert.equal(late.move, undefined, 'no new move once out of time');
  assert.match(late.waiting ?? '', /group 0/);
  // Shown (or given up at showMs): done, with no further move though the spread is not settled.
  assert.deepEqual(settleLeaders(layout(3, [1, 0, 0]), 3, { ...opts, now: 10_400, asked }), {});
  assert.deepEqual(settleLeaders(layout(3, [0, 0, 0]), 3, { ...opts, now: 11_500, asked }), {});
});

test('who leads where: an old leader still saying so after an election does not count (newest term only)', () => {
  // Replica id g*100 + host + 1 (placement group 0: 1..3). Group 0 just moved from host 0 (term 4)
  // to host 2 (term 5), and the old leader answered before it heard of term 5.
  const status = (id: number, role: 'leader' | 'follower', term: number): StatusInfo => ({ replicaId: id, groupId: Math.floor(id / 100), role, term, leaderId: 0, leaderAddr: '', commitIndex: 0, appliedIndex: 0, epoch: 1 });
  const rows = [0, 1, 2, 3].flatMap((g) =>
    [0, 1, 2].map((h) => {
      const id = g * 100 + h + 1;
      const leads = (g === 0 && h === 2) || (g === 0 && h === 0) || (g === 1 && h === 0) || (g === 2 && h === 0) || (g === 3 && h === 1);
      return { id, group: g, status: status(id, leads ? 'leader' : 'follower', g === 0 ? (h === 0 ? 4 : 5) : 2) };
    }),
  );
  const places = placesOf(rows, { hostOf: (id) => (id % 100) - 1 });
  assert.deepEqual(places.filter((p) => p.leader).map((p) => p.id), [3, 101, 201, 302]);
  // Leads per process 2, 1, 1: balanced; counting the old leader too (3, 1, 1) asked for a move.
  assert.equal(nextTransfer(places, 3), undefined);
});
