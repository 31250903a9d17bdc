// The smart client's routing decisions, with the network and the placement group replaced by fakes:
// which replica of which group each request goes to, and what happens on WRONG_GROUP, NOT_LEADER,
// unreachable groups and a missing configuration.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConnectionError } from '../../src/cluster/connection.ts';
import { ShardedClient, replicaOrder, type ConfigSource } from '../../src/client/sharded-client.ts';
import { KvsError } from '../../src/client/client.ts';
import { createPartitioner, loadXxh64, type Partitioner } from '../../src/partition/index.ts';
import { initialConfig, reshard, type ClusterConfig, type GroupInfo } from '../../src/placement/config.ts';
import { derivedClientId, splitBatch } from '../../src/cluster/split-batch.ts';
import type { Request, Response } from '../../src/wire/index.ts';

const P = 64;
const enc = new TextEncoder();
const group = (id: number, n = 3): GroupInfo => ({ id, replicas: Array.from({ length: n }, (_, i) => ({ id: id * 100 + i + 1, address: `g${id}r${i + 1}` })) });
const groupOfAddr = (addr: string): number => Number(/^g(\d+)r/.exec(addr)![1]);
const ok: Response = { kind: 'ok' };
const wrongGroup = (epoch: number): Response => ({ kind: 'error', error: { code: 'WRONG_GROUP', message: 'not mine', epoch } });
const notLeader = (leaderAddr: string): Response => ({ kind: 'error', error: { code: 'NOT_LEADER', message: 'not the leader', leaderId: 1, leaderAddr } });

/** A configuration source whose refresh hands out the next configuration of a list. */
class FakeSource implements ConfigSource {
  refreshes = 0;
  private readonly listeners: ((c: ClusterConfig) => void)[] = [];
  constructor(
    public current: ClusterConfig | undefined,
    readonly next: (ClusterConfig | undefined)[] = [],
  ) {}
  onChange(fn: (c: ClusterConfig) => void): () => void {
    this.listeners.push(fn);
    return () => void this.listeners.splice(this.listeners.indexOf(fn), 1);
  }
  async refresh(): Promise<ClusterConfig | undefined> {
    this.refreshes++;
    const c = this.next.length > 0 ? this.next.shift() : this.current;
    if (c && c !== this.current) {
      this.current = c;
      for (const fn of this.listeners) fn(c);
    }
    return c;
  }
  async waitFor(): Promise<ClusterConfig> {
    if (!this.current) throw new Error('no configuration');
    return this.current;
  }
  stop(): void {}
}

interface Sent {
  addr: string;
  direct: boolean;
  req: Request;
}

/** A ShardedClient whose network is a function. */
class TestClient extends ShardedClient {
  readonly sent: Sent[] = [];
  constructor(
    source: FakeSource,
    private readonly answer: (s: Sent) => Response,
    endpoints: string[] = [],
  ) {
    super({ placement: [], configSource: source, pollMs: 0, timeoutMs: 3000, endpoints });
  }
  protected override async send(addr: string, req: Request, direct: boolean): Promise<Response> {
    const s = { addr, direct, req };
    this.sent.push(s);
    return this.answer(s);
  }
}

async function setup(): Promise<{ partitioner: Partitioner; three: ClusterConfig; keyOf: (c: ClusterConfig, g: number, skip?: number) => string }> {
  const h64 = await loadXxh64();
  const partitioner = await createPartitioner(P);
  const three = initialConfig(h64, [group(1), group(2), group(3)], P);
  const keyOf = (c: ClusterConfig, g: number, skip = 0): string => {
    const found = Array.from({ length: 2000 }, (_, i) => `key-${i}`).filter((k) => c.owner[partitioner.partitionOf(enc.encode(k))] === g && c.moves.length === 0);
    return found[skip]!;
  };
  return { partitioner, three, keyOf };
}

describe('smart client routing', () => {
  it('orders replicas: writes start at the known leader, reads take turns', () => {
    const g = group(7);
    assert.deepEqual(replicaOrder(g, 'write', 'g7r2', 0), ['g7r2', 'g7r1', 'g7r3']);
    assert.deepEqual(replicaOrder(g, 'write', 'elsewhere', 1), ['g7r2', 'g7r3', 'g7r1'], 'a leader not in the group is ignored');
    assert.deepEqual(replicaOrder(g, 'read', 'g7r2', 0), ['g7r1', 'g7r2', 'g7r3']);
    assert.deepEqual(replicaOrder(g, 'read', 'g7r2', 4), ['g7r2', 'g7r3', 'g7r1']);
    assert.deepEqual(replicaOrder({ id: 1, replicas: [] }, 'read', undefined, 0), []);
  });

  it('sends a key straight to its owner; a stale table gets WRONG_GROUP, refreshes and succeeds', async () => {
    const { three, keyOf } = await setup();
    const h64 = await loadXxh64();
    const moving = reshard(h64, three, [group(1), group(2), group(3), group(4)]);
    const four: ClusterConfig = { ...moving, epoch: moving.epoch + 1, moves: [] };
    const key = keyOf(four, 4); // owned by group 4 after the reshard
    const before = three.owner[(await createPartitioner(P)).partitionOf(enc.encode(key))]!;
    const source = new FakeSource(three);
    const c = new TestClient(source, (s) => (groupOfAddr(s.addr) === 4 ? { kind: 'value', value: enc.encode('v') } : wrongGroup(four.epoch)));
    try {
      await c.ready();
      source.next.push(four); // the placement group has moved on; the client does not know yet
      const v = await c.get(key);
      assert.deepEqual(v, enc.encode('v'));
      assert.deepEqual(
        c.sent.map((s) => [groupOfAddr(s.addr), s.direct]),
        [
          [before, true],
          [4, true],
        ],
        'first the stale owner, then the new one, both directly',
      );
      assert.equal(c.routing.wrongGroup, 1);
      assert.equal(c.config?.epoch, four.epoch);
      assert.equal(c.routing.fallback, 0);
    } finally {
      c.close();
    }
  });

  it('during a move tries the source, then the destination, without a refresh', async () => {
    const { three } = await setup();
    const h64 = await loadXxh64();
    const moving = reshard(h64, three, [group(1), group(2), group(3), group(4)]);
    const partitioner = await createPartitioner(P);
    const m = moving.moves[0]!;
    const key = Array.from({ length: 5000 }, (_, i) => `key-${i}`).find((k) => partitioner.partitionOf(enc.encode(k)) === m.partition)!;
    const source = new FakeSource(moving);
    const c = new TestClient(source, (s) => (groupOfAddr(s.addr) === m.to ? ok : wrongGroup(moving.epoch)));
    try {
      await c.put(key, 'v');
      assert.deepEqual([...new Set(c.sent.map((s) => groupOfAddr(s.addr)))], [m.from, m.to]);
      assert.equal(c.routing.wrongGroup, 0);
      assert.equal(source.refreshes, 1, 'only the initial load');
    } finally {
      c.close();
    }
  });

  it('follows NOT_LEADER hints and remembers the leader per group', async () => {
    const { three, keyOf } = await setup();
    const leader = 'g2r3';
    const c = new TestClient(new FakeSource(three), (s) => (s.addr === leader ? ok : notLeader(leader)));
    try {
      await c.put(keyOf(three, 2, 0), 'a');
      const first = c.sent.length;
      assert.equal(c.sent.at(-1)!.addr, leader);
      await c.put(keyOf(three, 2, 1), 'b');
      assert.deepEqual(
        c.sent.slice(first).map((s) => s.addr),
        [leader],
        'the second write goes straight to the leader',
      );
      assert.ok(c.sent.every((s) => s.direct && groupOfAddr(s.addr) === 2));
    } finally {
      c.close();
    }
  });

  it('spreads linearizable reads over the replicas of the owning group only', async () => {
    const { three, keyOf } = await setup();
    const c = new TestClient(new FakeSource(three), () => ({ kind: 'value', value: null }));
    try {
      const key = keyOf(three, 3);
      for (let i = 0; i < 6; i++) await c.get(key);
      assert.deepEqual(new Set(c.sent.map((s) => s.addr)), new Set(['g3r1', 'g3r2', 'g3r3']));
    } finally {
      c.close();
    }
  });

  it('without a configuration, sends through any known replica (server-side routing)', async () => {
    const c = new TestClient(new FakeSource(undefined), () => ok, ['seed1', 'seed2']);
    try {
      await c.put('k', 'v');
      assert.equal(c.sent.length, 1);
      assert.equal(c.sent[0]!.direct, false);
      assert.ok(['seed1', 'seed2'].includes(c.sent[0]!.addr));
      assert.equal(c.routing.fallback, 1);
      assert.equal(c.routing.direct, 0);
    } finally {
      c.close();
    }
  });

  it('a replica that leaves an attempt unanswered is passed over: reads stop taking turns on it', async () => {
    const { three, keyOf } = await setup();
    const silent = 'g2r1';
    const c = new TestClient(new FakeSource(three), (s) => {
      if (s.addr === silent) throw new ConnectionError(`no answer from ${s.addr}`); // what an attempt timeout throws
      return { kind: 'value', value: null };
    });
    try {
      const key = keyOf(three, 2);
      for (let i = 0; i < 3; i++) await c.get(key); // one of these takes its turn at the silent replica
      const first = c.sent.findIndex((s) => s.addr === silent);
      assert.ok(first >= 0);
      for (let i = 0; i < 6; i++) await c.get(key);
      assert.ok(!c.sent.slice(first + 1).some((s) => s.addr === silent), `the silent replica was tried again: ${c.sent.map((s) => s.addr).join(' ')}`);
      assert.deepEqual(new Set(c.sent.slice(first + 1).map((s) => s.addr)), new Set(['g2r2', 'g2r3']));
    } finally {
      c.close();
    }
  });

  it('when the owning group is unreachable, refreshes and retries through any replica', async () => {
    const { three, keyOf } = await setup();
    const c = new TestClient(new FakeSource(three), (s) => {
      if (s.direct) throw new ConnectionError(`cannot reach ${s.addr}`);
      return { kind: 'value', value: enc.encode('routed') };
    });
    try {
      assert.deepEqual(await c.get(keyOf(three, 1)), enc.encode('routed'));
      assert.deepEqual(
        c.sent.map((s) => s.direct),
        [true, true, true, false],
        'every replica of the group once, then one through any replica',
      );
      assert.equal(c.routing.unreachable, 1);
      assert.ok(c.routing.refreshes >= 1);
    } finally {
      c.close();
    }
  });

  // Regression (outside review, 2026-12-06): with a majority stopped, a write whose attempt reached the
  // stopped leader and got no answer failed with NOT_LEADER (the followers' last answer), yet applied.
  it('a write an attempt may have reached fails with TIMEOUT, not NOT_LEADER; one that reached nothing with UNREACHABLE', async () => {
    const { three, keyOf } = await setup();
    const key = keyOf(three, 2);
    const c = new TestClient(new FakeSource(three), (s) => {
      if (s.addr === 'g2r1' && s.direct) throw new ConnectionError(`no answer from ${s.addr} within 500 ms`, true);
      return notLeader('');
    });
    try {
      await assert.rejects(c.put(key, 'v'), (e: unknown) => e instanceof KvsError && e.code === 'TIMEOUT' && /may or may not have been applied.*g2r1/.test(e.message));
      assert.ok(c.sent.some((s) => s.addr === 'g2r1'));
    } finally {
      c.close();
    }
    const refused = new TestClient(new FakeSource(three), (s) => {
      throw new ConnectionError(`cannot reach ${s.addr}: connect ECONNREFUSED`);
    });
    try {
      await assert.rejects(refused.put(key, 'v'), (e: unknown) => e instanceof KvsError && e.code === 'UNREACHABLE');
    } finally {
      refused.close();
    }
  });

  it('a fallback attempt the deadline cut short does not hide the error seen before it', async () => {
    // Regression (timing audit, 2026-12-07): as in callGroup (70b07c0), the last attempt of a call
    // can be given the deadline's last millisecond on a loaded machine; its "timed out" replaced
    // the ECONNREFUSED of the attempts before it in the UNREACHABLE message.
    const timeoutMs = 300;
    let deadline = 0;
    class CutShort extends ShardedClient {
      constructor() {
        super({ placement: [], configSource: new FakeSource(undefined), pollMs: 0, timeoutMs, endpoints: ['a', 'b'] });
      }
      attempts = 0;
      protected override async send(addr: string): Promise<Response> {
        // The first attempt is refused; the second is the one the deadline cuts short.
        if (++this.attempts === 1) throw new ConnectionError(`cannot reach ${addr}: connect ECONNREFUSED`);
        await new Promise((r) => setTimeout(r, deadline - Date.now() + 5));
        throw new ConnectionError(`connect to ${addr} timed out`);
      }
    }
    const c = new CutShort();
    try {
      deadline = Date.now() + timeoutMs;
      await assert.rejects(c.get('k'), (e: unknown) => {
        assert.ok(e instanceof KvsError && e.code === 'UNREACHABLE', String(e));
        assert.match(e.message, /could not reach [ab], [ab] \(last error: cannot reach [ab]: connect ECONNREFUSED\)/);
        return true;
      });
    } finally {
      c.close();
    }
  });

  it('splits a batch per partition with the same session ids as the server splitter', async () => {
    const { three, partitioner } = await setup();
    const c = new TestClient(new FakeSource(three), () => ok);
    try {
      await c.put('first', 'x'); // learns the lane's client id (the next write reuses the lane)
      const lane = c.sent[0]!.req as Extract<Request, { op: 'put' }>;
      c.sent.length = 0;
      const ops = Array.from({ length: 20 }, (_, i) => ({ op: 'put' as const, key: `b-${i}`, value: `${i}` }));
      await c.batch(ops);
      const wire = { op: 'batch' as const, ops: ops.map((o) => ({ op: 'put' as const, key: enc.encode(o.key), value: enc.encode(o.value) })), clientId: lane.clientId, seq: lane.seq + 1 };
      const expected = splitBatch(wire, (k) => partitioner.partitionOf(k));
      assert.ok(expected.length > 1);
      assert.equal(c.sent.length, expected.length, 'one request per partition');
      for (const { partition, req } of expected) {
        const s = c.sent.find((x) => x.req.op === 'batch' && x.req.clientId === req.clientId)!;
        assert.ok(s, `part for partition ${partition} not sent`);
        assert.equal(req.clientId, derivedClientId(lane.clientId, partition));
        assert.equal((s.req as typeof req).seq, lane.seq + 1);
        assert.equal(groupOfAddr(s.addr), three.owner[partition], 'sent to the partition owner');
        assert.deepEqual((s.req as typeof req).ops, req.ops);
      }
      // A batch within one partition carries the id the server derives for it too (splitBatch):
      // sent whole through any replica after a lost answer, it is then the same session.
      c.sent.length = 0;
      await c.batch([{ op: 'put', key: 'solo', value: '1' }]);
      const solo = c.sent[0]!.req as Extract<Request, { op: 'batch' }>;
      assert.equal(solo.clientId, derivedClientId(lane.clientId, partitioner.partitionOf(enc.encode('solo'))));
      assert.equal(solo.seq, lane.seq + 2);
    } finally {
      c.close();
    }
  });

  it('splitBatch derives a per-partition session id for every part, a one-partition batch included', async () => {
    const { partitioner } = await setup();
    const one = { op: 'batch' as const, ops: [{ op: 'delete' as const, key: enc.encode('a') }], clientId: 5n, seq: 9 };
    const pa = partitioner.partitionOf(enc.encode('a'));
    assert.deepEqual(splitBatch(one, (k) => partitioner.partitionOf(k)), [{ partition: pa, req: { ...one, clientId: derivedClientId(5n, pa) } }]);
    const anonOne = { ...one, clientId: 0n };
    assert.equal(splitBatch(anonOne, (k) => partitioner.partitionOf(k))[0]!.req, anonOne, 'no session: the batch goes as it is');
    const many = { ...one, ops: [0, 1, 2, 3, 4, 5, 6, 7].map((i) => ({ op: 'delete' as const, key: enc.encode(`k${i}`) })) };
    const parts = splitBatch(many, (k) => partitioner.partitionOf(k));
    assert.equal(parts.reduce((n, p) => n + p.req.ops.length, 0), 8);
    for (const p of parts) assert.equal(p.req.clientId, derivedClientId(5n, p.partition));
    const anon = splitBatch({ ...many, clientId: 0n }, (k) => partitioner.partitionOf(k));
    assert.ok(anon.every((p) => p.req.clientId === 0n), 'clientId 0 (no session) stays 0');
  });
});
