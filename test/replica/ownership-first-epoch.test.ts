// A shard group whose first applied configuration is already a reshard (it was down or slow when
// the cluster was created, or `kvs reshard` ran right after `kvs up`): it never served anything, yet
// the configuration names it as the source of moves. Those partitions must become LEAVING — served
// here until the destination freezes them — or the freeze is refused forever and nobody serves them.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EntryType, type Entry } from '../../src/raft/types.ts';
import { createPartitioner, loadXxh64 } from '../../src/partition/index.ts';
import { completeMoves, initialConfig, reshard, type ClusterConfig, type GroupInfo } from '../../src/placement/config.ts';
import { PartState, applyOwnership, canServe, emptyOwnership, partitionsIn, type Ownership } from '../../src/replica/ownership.ts';
import { encodeOwnership, encodeWrite } from '../../src/replica/commands.ts';
import { StateMachine } from '../../src/replica/state-machine.ts';
import { HEADER_BYTES, encodeRequest, readFrameHeader, type Request } from '../../src/wire/index.ts';

const P = 64;
const group = (id: number): GroupInfo => ({ id, replicas: [{ id, address: `127.0.0.1:${9000 + id}` }] });
const GROUPS = [1, 2, 3, 4];

/** Epoch 1 over groups 1-3, then epoch 2 adding group 4: every group applies epoch 2 first. */
async function skippedFirstEpoch(): Promise<{ c1: ClusterConfig; c2: ClusterConfig }> {
  const h64 = await loadXxh64();
  const c1 = initialConfig(h64, [group(1), group(2), group(3)], P);
  const c2 = reshard(h64, c1, [group(1), group(2), group(3), group(4)]);
  assert.equal(c2.epoch, 2);
  assert.ok(c2.moves.length > 0, 'the reshard moves partitions');
  return { c1, c2 };
}

function expectedAtFirstEpoch(c: ClusterConfig, g: number, p: number): { state: PartState; peer: number } {
  const m = c.moves.find((x) => x.partition === p);
  if (m?.from === g) return { state: PartState.Leaving, peer: m.to };
  if (m?.to === g) return { state: PartState.Arriving, peer: m.from };
  if (!m && c.owner[p] === g) return { state: PartState.Serving, peer: 0 };
  return { state: PartState.Absent, peer: 0 };
}

const name = (s: PartState | undefined): string => Object.entries(PartState).find(([, v]) => v === s)?.[0] ?? String(s);

describe('ownership at a group first configuration', () => {
  it('a partition moving away from the group is leaving, one moving to it arriving', async () => {
    const { c2 } = await skippedFirstEpoch();
    for (const g of GROUPS) {
      const o = applyOwnership(emptyOwnership(P), { type: 'epoch', group: g, config: c2 });
      assert.equal(o.epoch, 2);
      for (let p = 0; p < P; p++) {
        const want = expectedAtFirstEpoch(c2, g, p);
        assert.equal(name(o.state[p]), name(want.state), `group ${g}, partition ${p}`);
        assert.equal(o.peer[p], want.peer, `group ${g}, partition ${p}: peer`);
      }
    }
    // The scenario has each kind: moves out of an old group, into the new one, and stayers.
    assert.ok(c2.moves.some((m) => m.from === 3));
    assert.ok(c2.moves.some((m) => m.to === 4));
  });

  it('every partition is served by exactly one group, then by its owner after the hand-offs', async () => {
    const { c2 } = await skippedFirstEpoch();
    const own = new Map<number, Ownership>(GROUPS.map((g) => [g, applyOwnership(emptyOwnership(P), { type: 'epoch', group: g, config: c2 })]));
    const servers = (p: number): number[] => GROUPS.filter((g) => canServe(own.get(g)!, p));
    for (let p = 0; p < P; p++) assert.equal(servers(p).length, 1, `partition ${p} served by [${servers(p).join(',')}]`);

    // Each destination pulls from each source: the source must hold the wave LEAVING (source.ts
    // refuses a freeze of anything else with BAD_REQUEST), freezes it, the destination activates.
    let config = c2;
    for (const dst of GROUPS) {
      const arriving = partitionsIn(own.get(dst)!, PartState.Arriving);
      for (const src of new Set(arriving.map((p) => own.get(dst)!.peer[p]!))) {
        const wave = arriving.filter((p) => own.get(dst)!.peer[p] === src);
        const states = wave.map((p) => name(own.get(src)!.state[p]));
        assert.ok(states.every((s) => s === 'Leaving'), `group ${src} would refuse to freeze ${wave.join(',')}: ${states.join(',')}`);
        own.set(src, applyOwnership(own.get(src)!, { type: 'freeze', partitions: wave }));
        own.set(dst, applyOwnership(own.get(dst)!, { type: 'activate', partitions: wave }));
        config = completeMoves(config, wave);
      }
    }
    assert.equal(config.moves.length, 0);
    for (const g of GROUPS) {
      let o = applyOwnership(own.get(g)!, { type: 'epoch', group: g, config });
      o = applyOwnership(o, { type: 'dropped', partitions: partitionsIn(o, PartState.Dropping) });
      own.set(g, o);
    }
    for (let p = 0; p < P; p++) assert.deepEqual(servers(p), [config.owner[p]], `partition ${p}`);
  });

  it('is deterministic and leaves the ownership it was given unchanged', async () => {
    const { c2 } = await skippedFirstEpoch();
    const base = emptyOwnership(P);
    const before = structuredClone(base);
    const a = applyOwnership(base, { type: 'epoch', group: 3, config: c2 });
    const b = applyOwnership(emptyOwnership(P), { type: 'epoch', group: 3, config: structuredClone(c2) });
    assert.deepEqual(a, b);
    assert.deepEqual(base, before);
  });

  it('a group that applied epoch 1 first hands off the same way (unchanged behaviour)', async () => {
    const { c1, c2 } = await skippedFirstEpoch();
    for (const g of [1, 2, 3]) {
      const o1 = applyOwnership(emptyOwnership(P), { type: 'epoch', group: g, config: c1 });
      const stepwise = applyOwnership(o1, { type: 'epoch', group: g, config: c2 });
      const direct = applyOwnership(emptyOwnership(P), { type: 'epoch', group: g, config: c2 });
      assert.deepEqual(direct, stepwise, `group ${g}`);
    }
  });
});

describe('the state machine at a group first configuration', () => {
  let index = 0;
  const entry = (data: Uint8Array): Entry => ({ index: ++index, term: 1, type: EntryType.Normal, data });
  const put = (key: string): Entry => {
    const req: Request = { op: 'put', key: Buffer.from(key), value: Buffer.from('v'), clientId: 0n, seq: 0 };
    const frame = encodeRequest(0, req);
    return entry(encodeWrite(0, readFrameHeader(frame)!.type, frame.subarray(HEADER_BYTES)));
  };
  const served = (sm: StateMachine, e: Entry): boolean => {
    const planned = sm.plan([e]);
    const answer = planned.answers.find((a) => a.index === e.index);
    return answer !== undefined && answer.fixed === undefined;
  };

  it('serves a moving-away partition until its freeze, on every replica alike', async () => {
    const { c2 } = await skippedFirstEpoch();
    const partitioner = await createPartitioner(P);
    const m = c2.moves.find((x) => x.from === 3)!;
    const key = Array.from({ length: 10_000 }, (_, i) => `k${i}`).find((k) => partitioner.partitionOf(Buffer.from(k)) === m.partition)!;
    assert.ok(key, 'a key in the moving partition');

    // Two replicas of group 3, both fresh (epoch 0), apply the same entries.
    const replicas = [new StateMachine(3, partitioner, undefined), new StateMachine(3, partitioner, undefined)];
    const epoch = entry(encodeOwnership({ type: 'epoch', group: 3, config: c2 }));
    const metas = replicas.map((sm) => sm.plan([epoch]).commands);
    assert.deepEqual(metas[0], metas[1], 'the same ownership recorded on every replica');
    for (const sm of replicas) {
      assert.equal(sm.epoch, 2);
      assert.equal(name(sm.ownership!.state[m.partition]), 'Leaving');
      assert.equal(sm.ownership!.peer[m.partition], m.to);
    }
    const write = put(key);
    for (const sm of replicas) assert.ok(served(sm, write), 'a write to the leaving partition is served');

    const freeze = entry(encodeOwnership({ type: 'freeze', partitions: [m.partition] }));
    for (const sm of replicas) sm.plan([freeze]);
    for (const sm of replicas) assert.equal(name(sm.ownership!.state[m.partition]), 'Frozen');
    const late = put(key);
    for (const sm of replicas) assert.ok(!served(sm, late), 'a write after the freeze gets WRONG_GROUP');
  });
});
