// Cross-group routing decisions, with the network and the groups replaced by fakes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createPartitioner, loadXxh64 } from '../../src/partition/index.ts';
import { initialConfig, reshard, type ClusterConfig } from '../../src/placement/config.ts';
import type { ConfigWatcher } from '../../src/cluster/config-watcher.ts';
import type { GroupConnections } from '../../src/router/groups.ts';
import { PlacementFront } from '../../src/router/placement-front.ts';
import type { LocalReader } from '../../src/router/router.ts';
import { ShardRoutes } from '../../src/router/sharded.ts';
import { derivedClientId } from '../../src/cluster/split-batch.ts';
import { callLocal, stubRouter } from '../support/stub-router.ts';
import { DEFAULT_MAX_FRAME_BYTES, encodeResponse, type KeyValue, type Request, type Response } from '../../src/wire/index.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { StateMachine } from '../../src/replica/state-machine.ts';
import { PartState, applyOwnership, emptyOwnership } from '../../src/replica/ownership.ts';
import { placementWatcher } from '../../src/client/placement-watcher.ts';

const wrongGroup = (epoch: number): Response => ({ kind: 'error', error: { code: 'WRONG_GROUP', message: 'not mine', epoch } });

describe('cross-group routing', () => {
  it('a request routed with a stale table gets WRONG_GROUP, refreshes, and succeeds', async () => {
    const h64 = await loadXxh64();
    const partitioner = await createPartitioner(64);
    const stale = initialConfig(h64, [{ id: 1, replicas: [] }, { id: 2, replicas: [] }], 64);
    const moved = reshard(h64, stale, [{ id: 2, replicas: [] }]);
    const fresh: ClusterConfig = { ...moved, moves: [], epoch: moved.epoch + 1, groups: moved.groups.filter((g) => g.id === 2) };
    // A key group 1 owned in the stale table (it has since moved to group 2).
    const key = Array.from({ length: 200 }, (_, i) => Buffer.from(`key-${i}`)).find((k) => stale.owner[partitioner.partitionOf(k)] === 1)!;

    let current = stale;
    let refreshes = 0;
    const watcher = {
      get current() {
        return current;
      },
      refresh: async () => {
        refreshes++;
        current = fresh;
        return fresh;
      },
      waitFor: async () => current,
    } as unknown as ConfigWatcher;
    const sent: number[] = [];
    const groups = {
      send: async (g: number): Promise<Response> => {
        sent.push(g);
        return g === 2 ? { kind: 'value', value: Buffer.from('v') } : wrongGroup(fresh.epoch);
      },
    } as unknown as GroupConnections;
    const routes = new ShardRoutes({
      group: 9, // this replica is in neither group: everything is remote
      watcher,
      partitioner,
      groups,
      local: async () => assert.fail('nothing is local here'),
    });
    const req: Request = { op: 'get', key, consistency: 'linearizable' };
    const res = await routes.execute(req, { type: 3, body: new Uint8Array(), hops: 0 }, Date.now() + 5000);
    assert.deepEqual(res, { kind: 'value', value: Buffer.from('v') });
    assert.deepEqual(sent, [1, 2], 'first the stale owner, then the owner from the refreshed table');
    assert.equal(refreshes, 1);
    assert.equal(routes.stats.wrongGroup, 1);
  });

  it('derives distinct, stable session ids per partition for split batches', () => {
    const a = derivedClientId(42n, 1);
    assert.equal(derivedClientId(42n, 1), a);
    assert.notEqual(derivedClientId(42n, 2), a);
    assert.notEqual(derivedClientId(43n, 1), a);
    assert.ok(a > 0n && a < 1n << 64n);
  });

  it('a count asks every group and adds up their answers', async () => {
    const partitioner = await createPartitioner(64);
    const config = initialConfig(await loadXxh64(), [1, 2, 3].map((id) => ({ id, replicas: [] })), 64);
    const watcher = { current: config, refresh: async () => config, waitFor: async () => config } as unknown as ConfigWatcher;
    const asked: number[] = [];
    const groups = {
      send: async (g: number): Promise<Response> => {
        asked.push(g);
        return { kind: 'count', count: g * 100 };
      },
    } as unknown as GroupConnections;
    const routes = new ShardRoutes({ group: 1, watcher, partitioner, groups, local: async () => ({ kind: 'count', count: 7 }) });
    const res = await routes.execute({ op: 'count', consistency: 'stale' }, { type: 9, body: new Uint8Array([1]), hops: 0 }, Date.now() + 5000);
    assert.deepEqual(res, { kind: 'count', count: 7 + 200 + 300 }, 'this group answers locally, the others remotely');
    assert.deepEqual(asked.sort(), [2, 3]);
  });

  it("a scan merges every group's page and cuts the merged page at the byte bound, resuming at the first key left out", async () => {
    const partitioner = await createPartitioner(64);
    const config = initialConfig(await loadXxh64(), [1, 2, 3].map((id) => ({ id, replicas: [] })), 64);
    const watcher = { current: config, refresh: async () => config, waitFor: async () => config } as unknown as ConfigWatcher;
    // Each group answers a page just under the bound (3 values of 600 KB): each fits a frame alone.
    const pageOf = (g: number): Response => ({
      kind: 'scan',
      items: [0, 1, 2].map((i) => ({ key: Buffer.from(`k${i}-g${g}`), value: Buffer.alloc(600_000, g) })),
      more: null,
    });
    const groups = { send: async (g: number): Promise<Response> => pageOf(g) } as unknown as GroupConnections;
    const routes = new ShardRoutes({ group: 1, watcher, partitioner, groups, local: async () => pageOf(1) });
    const res = await routes.execute({ op: 'scan', start: Buffer.from('k'), end: null, limit: 0, consistency: 'stale' }, { type: 7, body: new Uint8Array([1]), hops: 0 }, Date.now() + 5000);
    assert.equal(res.kind, 'scan');
    if (res.kind !== 'scan') return;
    // Merged in key order: k0-g1 k0-g2 k0-g3 k1-g1 ...; 3 values fit 2 MiB, a 4th would not.
    assert.deepEqual(res.items.map((kv) => Buffer.from(kv.key).toString()), ['k0-g1', 'k0-g2', 'k0-g3']);
    assert.deepEqual(res.more && Buffer.from(res.more).toString(), 'k1-g1');
    assert.ok(encodeResponse(1, res).length <= DEFAULT_MAX_FRAME_BYTES);
  });

  it('a group counts only the keys it serves when it also holds partitions moving in or out', async () => {
    // 12,000 keys (more than one counting page); keys starting with "x" are in partitions not served.
    const keys = Array.from({ length: 12_000 }, (_, i) => Buffer.from(`${i % 4 === 0 ? 'x' : 'k'}${String(i).padStart(6, '0')}`)).sort(Buffer.compare);
    const reader: LocalReader = {
      get: () => null,
      count: () => keys.length,
      scan: (start, _end, limit) => {
        const from = keys.findIndex((k) => Buffer.compare(k, start) >= 0);
        if (from < 0) return { items: [], more: null };
        const items: KeyValue[] = keys.slice(from, from + limit).map((key) => ({ key, value: new Uint8Array(0) }));
        return { items, more: keys[from + limit] ?? null };
      },
    };
    let moving = false;
    const router = stubRouter({
      replica: { visibleBarrier: async () => {} },
      reader,
      ownership: { serves: (key) => key[0] !== 0x78, wrongGroup: () => assert.fail('no wrong group'), holdsUnserved: () => moving, handingOver: () => false, current: () => undefined },
    });
    const count = (): Promise<Response> => callLocal(router, { op: 'count', consistency: 'stale' }, { hops: 1 });
    assert.deepEqual(await count(), { kind: 'count', count: 12_000 }, 'nothing moving: the entry count of the store');
    moving = true;
    assert.deepEqual(await count(), { kind: 'count', count: 9_000 }, 'partitions moving: only the served keys');
  });

  // The fan-out asks every group at once. The source answered with the partition (still leaving);
  // the destination, paging its store (the partition arriving), activated it mid-count and counted
  // it from the next page on: 1,364 keys of 40,000 counted twice. Found by an outside review.
  it('a count that pages across a hand-over step is refused, not answered with a mixed total', async () => {
    const N = 16;
    const p = await createPartitioner(N);
    const keys = Array.from({ length: 40_000 }, (_, i) => Buffer.from(`key-${String(i).padStart(6, '0')}`));
    const P = p.partitionOf(keys[0]!);
    const held = keys.filter((k, i) => p.partitionOf(k) === P || i % 2 === 1).sort(Buffer.compare);
    const reader: LocalReader = {
      get: () => null,
      count: () => held.length,
      scan: (start, _end, limit) => {
        let i = held.findIndex((k) => Buffer.compare(k, start) >= 0);
        if (i < 0) i = held.length;
        return { items: held.slice(i, i + limit).map((key) => ({ key, value: new Uint8Array(0) })), more: held[i + limit] ?? null };
      },
    };
    const own = emptyOwnership(N);
    own.epoch = 2;
    own.state.fill(PartState.Serving);
    own.state[P] = PartState.Arriving;
    own.peer[P] = 1;
    const sm = new StateMachine(2, p, own);
    const router = stubRouter({ replica: { visibleBarrier: async () => {} }, reader, ownership: sm.readerOwnership() });
    const count = (): Promise<Response> => callLocal(router, { op: 'count', consistency: 'stale' }, { hops: 1 });
    const paging = count();
    await new Promise((r) => setImmediate(r)); // the first page is counted
    sm.publish(applyOwnership(own, { type: 'activate', partitions: [P] }), 10);
    const res = await paging;
    assert.ok(res.kind === 'error' && res.error.code === 'UNAVAILABLE', `answered ${JSON.stringify(res)}`);
  });

  it('a group with partitions frozen for a hand-over answers scans and counts UNAVAILABLE (retried), not a page without them', async () => {
    // Found in review (2026-12-07): between the freeze and the activation neither group serves the
    // wave, and a page merged from both silently left its keys out.
    const p = await createPartitioner(16);
    const own = emptyOwnership(16);
    own.epoch = 2;
    own.state.fill(PartState.Serving);
    const sm = new StateMachine(1, p, own);
    const keys = Array.from({ length: 40 }, (_, i) => Buffer.from(`k${i}`)).sort(Buffer.compare);
    const reader: LocalReader = {
      get: () => null,
      count: () => keys.length,
      scan: () => ({ items: keys.map((key) => ({ key, value: new Uint8Array(0) })), more: null }),
    };
    const router = stubRouter({ replica: { visibleBarrier: async () => {} }, reader, ownership: sm.readerOwnership() });
    const scan = (): Promise<Response> => callLocal(router, { op: 'scan', start: new Uint8Array(0), end: null, limit: 0, consistency: 'stale' }, { hops: 1 });
    const count = (): Promise<Response> => callLocal(router, { op: 'count', consistency: 'stale' }, { hops: 1 });
    assert.equal((await scan()).kind, 'scan');
    own.state[p.partitionOf(keys[0]!)] = PartState.Leaving; // still served: answered
    sm.publish(sm.ownership, 1);
    assert.equal((await scan()).kind, 'scan');
    own.state[p.partitionOf(keys[0]!)] = PartState.Frozen;
    sm.publish(sm.ownership, 2);
    for (const res of [await scan(), await count()]) {
      assert.ok(res.kind === 'error' && res.error.code === 'UNAVAILABLE', JSON.stringify(res));
    }
    own.state[p.partitionOf(keys[0]!)] = PartState.Dropping; // the move completed: served elsewhere
    sm.publish(sm.ownership, 3);
    assert.equal((await count()).kind, 'count');

    // The destination: answers while the partition arrives (the source serves it), waits from the
    // activation until the configuration that completes the move is applied.
    const moving = p.partitionOf(keys[0]!);
    const base: ClusterConfig = { epoch: 1, partitions: 16, loadFactor: 1.25, groups: [], owner: Array<number>(16).fill(1), moves: [] };
    const withMove: ClusterConfig = { ...base, epoch: 2, owner: base.owner.map((o, q) => (q === moving ? 2 : o)), moves: [{ partition: moving, from: 1, to: 2 }] };
    const completed: ClusterConfig = { ...withMove, epoch: 3, moves: [] };
    const at = async (o: ReturnType<typeof emptyOwnership>): Promise<string> => {
      const r = stubRouter({ replica: { visibleBarrier: async () => {} }, reader, ownership: new StateMachine(2, p, o).readerOwnership() });
      const res = await callLocal(r, { op: 'scan', start: new Uint8Array(0), end: null, limit: 0, consistency: 'stale' }, { hops: 1 });
      return res.kind === 'error' ? res.error.code : res.kind;
    };
    const arriving = applyOwnership(applyOwnership(emptyOwnership(16), { type: 'epoch', group: 2, config: base }), { type: 'epoch', group: 2, config: withMove });
    assert.equal(await at(arriving), 'scan');
    const activated = applyOwnership(arriving, { type: 'activate', partitions: [moving] });
    assert.equal(await at(activated), 'UNAVAILABLE');
    assert.equal(await at(applyOwnership(activated, { type: 'epoch', group: 2, config: completed })), 'scan');
  });

  it('a placement replica serves user keys itself only while no cluster configuration exists', async () => {
    let hasConfig = false;
    const router = stubRouter({
      replica: { visibleBarrier: async () => {} },
      reader: { get: (key) => Buffer.from(`local:${Buffer.from(key).toString()}`), scan: () => ({ items: [], more: null }), count: () => 0 },
    });
    // Its own endpoints are unreachable here: the routes are never built, only the gate is tested.
    const front = new PlacementFront({ group: 0, watcher: placementWatcher(['127.0.0.1:9']), router, hasConfig: () => hasConfig, attemptMs: 100, log: silentLogger });
    const get = (key: string): Promise<Response> => front.execute({ op: 'get', key: Buffer.from(key), consistency: 'stale' }, { type: 3, body: new Uint8Array(), hops: 0 });
    try {
      assert.deepEqual(await get('user'), { kind: 'value', value: Buffer.from('local:user') }, 'a plain single group serves every key');
      hasConfig = true;
      const r = await get('user');
      assert.equal(r.kind === 'error' && r.error.code, 'UNAVAILABLE', 'a configuration exists but no routes yet: not served here');
      assert.deepEqual(await get('placement/config'), { kind: 'value', value: Buffer.from('local:placement/config') }, 'the configuration key is always served here');
    } finally {
      front.stop();
    }
  });
});
