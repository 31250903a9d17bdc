// The ownership transitions, driven through whole reshards with every interleaving the protocol
// allows: at no point may two groups serve one partition, and every partition ends up served by
// its owner.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadXxh64 } from '../../src/partition/index.ts';
import { completeMoves, groupOf, initialConfig, reshard, withReplica, type ClusterConfig, type GroupInfo, type ReplicaInfo } from '../../src/placement/config.ts';
import { PartState, applyOwnership, canServe, emptyOwnership, partitionsIn, type Ownership } from '../../src/replica/ownership.ts';

const P = 32;
const group = (id: number): GroupInfo => ({ id, replicas: [] });

/** A deterministic PRNG so a failing interleaving can be replayed from its seed. */
function prng(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n) => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s % n;
  };
}

describe('partition ownership', () => {
  it('never lets two groups serve a partition, across reshards applied in any interleaving', async () => {
    const h64 = await loadXxh64();
    for (let seed = 1; seed <= 60; seed++) {
      const rnd = prng(seed);
      let config: ClusterConfig = initialConfig(h64, [group(1), group(2), group(3)], P);
      const own = new Map<number, Ownership>();
      const known = new Map<number, ClusterConfig>(); // configurations each group has seen
      const state = (g: number): Ownership => own.get(g) ?? emptyOwnership(P);
      const setOwn = (g: number, o: Ownership): void => void own.set(g, o);
      const check = (): void => {
        for (let p = 0; p < P; p++) {
          const servers = [...own.entries()].filter(([, o]) => canServe(o, p)).map(([g]) => g);
          assert.ok(servers.length <= 1, `seed ${seed}: partition ${p} served by groups ${servers.join(',')}`);
        }
      };
      const groupsets = [[1, 2, 3, 4], [1, 2], [1, 2, 5], [2, 5, 6], [1]];
      let next = 0;
      for (let stepNo = 0; stepNo < 400; stepNo++) {
        const groups = [...new Set([...config.groups.map((g) => g.id), ...own.keys()])];
        const g = groups[rnd(groups.length)]!;
        const action = rnd(4);
        if (action === 0 && config.moves.length === 0 && next < groupsets.length) {
          config = reshard(h64, config, groupsets[next++]!.map(group)); // a new reshard
        } else if (action === 1) {
          // A group may skip epochs: it applies whatever is current when it gets to it.
          if (config.epoch > state(g).epoch) setOwn(g, applyOwnership(state(g), { type: 'epoch', group: g, config }));
          known.set(g, config);
        } else if (action === 2) {
          // Destination g pulls a wave from one source: freeze there, then activate here, then complete.
          const o = state(g);
          const arriving = partitionsIn(o, PartState.Arriving);
          if (arriving.length > 0) {
            const src = o.peer[arriving[0]!]!;
            const wave = arriving.filter((p) => o.peer[p] === src);
            const so = state(src);
            if (wave.every((p) => so.state[p] === PartState.Leaving || so.state[p] === PartState.Frozen)) {
              setOwn(src, applyOwnership(so, { type: 'freeze', partitions: wave }));
              check();
              setOwn(g, applyOwnership(state(g), { type: 'activate', partitions: wave }));
              config = completeMoves(config, wave);
            }
          }
        } else {
          const dropping = partitionsIn(state(g), PartState.Dropping);
          if (dropping.length > 0) setOwn(g, applyOwnership(state(g), { type: 'dropped', partitions: dropping }));
        }
        check();
      }
      // Let everything settle: every group applies the latest epoch, all hand-offs finish.
      for (let round = 0; round < 20; round++) {
        for (const g of [...new Set([...config.groups.map((x) => x.id), ...own.keys()])]) {
          if (config.epoch > state(g).epoch) setOwn(g, applyOwnership(state(g), { type: 'epoch', group: g, config }));
          const o = state(g);
          const arriving = partitionsIn(o, PartState.Arriving);
          for (const p of arriving) {
            const src = o.peer[p]!;
            setOwn(src, applyOwnership(state(src), { type: 'freeze', partitions: [p] }));
            setOwn(g, applyOwnership(state(g), { type: 'activate', partitions: [p] }));
            config = completeMoves(config, [p]);
          }
          check();
        }
      }
      assert.equal(config.moves.length, 0, `seed ${seed}: hand-offs left pending`);
      for (let p = 0; p < P; p++) assert.ok(canServe(state(config.owner[p]!), p), `seed ${seed}: owner of ${p} does not serve it`);
    }
  });

  it('a partition frozen in one reshard and moving back in a later epoch becomes arriving (regression)', async () => {
    const h64 = await loadXxh64();
    let c = initialConfig(h64, [group(1), group(2)], P);
    let g2 = applyOwnership(emptyOwnership(P), { type: 'epoch', group: 2, config: c });
    c = reshard(h64, c, [group(1), group(2), group(4)]);
    const p = c.moves.find((m) => m.from === 2)!.partition;
    g2 = applyOwnership(g2, { type: 'epoch', group: 2, config: c });
    g2 = applyOwnership(g2, { type: 'freeze', partitions: [p] });
    c = completeMoves(c, c.moves.map((m) => m.partition));
    // Group 2 never applies the epoch that completed the move; the next reshard sends p back.
    c = reshard(h64, c, [group(1), group(2)]);
    assert.ok(c.moves.some((m) => m.partition === p && m.to === 2), 'the test needs p to move back to group 2');
    g2 = applyOwnership(g2, { type: 'epoch', group: 2, config: c });
    assert.equal(g2.state[p], PartState.Arriving);
  });

  // An outside test of the operator: 16 partitions, 10 -> 12 shard groups left a kept group owning
  // nothing; completing the moves released it from the configuration (the operator then deleted it
  // and created another). Only the groups the reshard removed are released.
  it('completing a reshard releases the groups it removed, not a kept or added group that owns nothing', async () => {
    const h64 = await loadXxh64();
    const ids = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);
    let found: { c: ClusterConfig; empty: number } | undefined;
    for (let from = 2; from <= 12 && !found; from++) {
      for (let to = 2; to <= 16 && !found; to++) {
        const c = reshard(h64, initialConfig(h64, ids(from).map(group), 16), [...ids(to - 1), 100].map(group));
        const empty = c.groups.find((g) => (g.id <= to - 1 || g.id === 100) && !c.owner.includes(g.id) && !c.moves.some((m) => m.from === g.id));
        if (empty && c.moves.length > 0 && c.leaving!.length > 0) found = { c, empty: empty.id };
      }
    }
    assert.ok(found, 'the test needs a reshard that leaves a target group owning nothing');
    const { c, empty } = found;
    const removed = c.leaving!;
    const done = completeMoves(c, c.moves.map((m) => m.partition));
    assert.ok(done.groups.some((g) => g.id === empty), `group ${empty} (kept, owning nothing) stays listed`);
    for (const id of removed) assert.ok(!done.groups.some((g) => g.id === id), `removed group ${id} is released once it handed everything off`);
    assert.deepEqual(done.leaving, []);
    // A configuration written before 'leaving' existed keeps the earlier rule.
    const { leaving: _, ...old } = c;
    const oldDone = completeMoves(old, c.moves.map((m) => m.partition));
    assert.ok(!oldDone.groups.some((g) => g.id === empty));
    assert.equal(oldDone.leaving, undefined);
  });

  // kvs reshard read the configuration, started the new group and waited for its leader, then
  // wrote the replica lists of its read: a `kvs replica add` made meanwhile was undone, the added
  // voter left unlisted (an outside review: the group lost quorum with 3 of 4 voters up).
  it('a reshard keeps the replica lists of the configuration it replaces, for groups it lists', async () => {
    const h64 = await loadXxh64();
    const r = (id: number): ReplicaInfo => ({ id, address: `127.0.0.1:${7000 + id}` });
    const read = initialConfig(h64, [{ id: 1, replicas: [r(101), r(102), r(103)] }, { id: 2, replicas: [r(201), r(202), r(203)] }], 64);
    const now = withReplica(read, 1, r(104)); // added after the reshard's read
    const groupsFromRead: GroupInfo[] = [...read.groups, { id: 3, replicas: [r(301), r(302), r(303)] }];
    const next = reshard(h64, now, groupsFromRead);
    assert.deepEqual(groupOf(next, 1)!.replicas.map((x) => x.id), [101, 102, 103, 104]);
    assert.deepEqual(groupOf(next, 3)!.replicas.map((x) => x.id), [301, 302, 303], 'a new group gets the list it was given');
  });
});
