// The smart client against real sharded clusters: its requests land on the owning group (writes on
// its leader) without any replica relaying them, it keeps working through a live reshard 3 → 4 under
// concurrent writes, a stale table is corrected by WRONG_GROUP, and with the placement group down it
// still works through any replica. Ports 27500–27999 (native + 200 for the HTTP doors).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import { KvsClient } from '../../src/client/client.ts';
import { ShardedClient } from '../../src/client/sharded-client.ts';
import { ConnectionError } from '../../src/cluster/connection.ts';
import type { Request, Response } from '../../src/wire/index.ts';
import { createPartitioner } from '../../src/partition/index.ts';
import type { ClusterConfig } from '../../src/placement/config.ts';
import { readConfig, startReshard, waitForMoves } from '../../src/resharding/admin.ts';
import { PLACEMENT, ShardedCluster } from './cluster.ts';
import { waitFor } from '../support/wait.ts';

const BIN = resolve(import.meta.dirname, '../../bin/kvs.js');
const run = promisify(execFile);
const enc = new TextEncoder();
const dec = new TextDecoder();

type Metrics = Map<string, number>;

async function scrape(c: ShardedCluster, address: string): Promise<Metrics> {
  const res = await fetch(`http://${c.httpAddress(address)}/metrics`);
  assert.equal(res.status, 200);
  const out: Metrics = new Map();
  for (const line of (await res.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

const requests = (op: string): string => `kvs_requests_total{door="native",op="${op}",outcome="ok"}`;
const FORWARDED = 'kvs_router_forwarded_total';

/** Every shard replica's metrics, by native address. */
async function scrapeShards(c: ShardedCluster, groups: number[]): Promise<Map<string, Metrics>> {
  const out = new Map<string, Metrics>();
  for (const g of groups) for (const r of c.groups.get(g)!.replicas) out.set(r.address, await scrape(c, r.address));
  return out;
}

/** How much metric `name` grew from `a` to `b`, summed over the given replicas. */
function delta(a: Map<string, Metrics>, b: Map<string, Metrics>, addrs: string[], name: string): number {
  let n = 0;
  for (const addr of addrs) n += (b.get(addr)?.get(name) ?? 0) - (a.get(addr)?.get(name) ?? 0);
  return n;
}

async function ownerFn(config: ClusterConfig): Promise<(key: string) => number> {
  const partitioner = await createPartitioner(config.partitions);
  return (key) => config.owner[partitioner.partitionOf(enc.encode(key))]!;
}

/**
 * Overwrites its own keys in a loop. For each key it remembers the last acknowledged value and the
 * values of writes after it whose outcome is unknown (they may have applied): the key must end up
 * holding one of those.
 */
class OverwritingWriter {
  readonly acked = new Map<string, string>();
  readonly unknown = new Map<string, Set<string>>();
  ackCount = 0;
  private running = true;
  private loop: Promise<void> = Promise.resolve();
  constructor(
    private readonly client: KvsClient,
    private readonly name: string,
    private readonly keys: number,
    private readonly batch: boolean,
  ) {}
  start(): void {
    this.loop = (async () => {
      for (let i = 0; this.running; i++) {
        const value = `${this.name}-${i}`;
        const keys = this.batch ? Array.from({ length: this.keys }, (_, j) => `${this.name}-k${j}`) : [`${this.name}-k${i % this.keys}`];
        try {
          if (this.batch) await this.client.batch(keys.map((key) => ({ op: 'put' as const, key, value })));
          else await this.client.put(keys[0]!, value);
          for (const k of keys) {
            this.acked.set(k, value);
            this.unknown.delete(k);
          }
          this.ackCount++;
        } catch {
          for (const k of keys) {
            const s = this.unknown.get(k) ?? new Set<string>();
            s.add(value);
            this.unknown.set(k, s);
          }
        }
      }
    })();
  }
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
  async check(reader: KvsClient): Promise<void> {
    for (const [key, value] of this.acked) {
      const got = await reader.get(key);
      const v = got === null ? null : dec.decode(got);
      const allowed = new Set([value, ...(this.unknown.get(key) ?? [])]);
      assert.ok(v !== null && allowed.has(v), `${key}: read ${v}, acknowledged ${value} (unknown outcomes after it: ${[...(this.unknown.get(key) ?? [])].join(', ') || 'none'})`);
    }
  }
}

describe('smart client on a sharded cluster', () => {
  // Every cluster a test started, stopped here even when the test failed before its own stop().
  const clusters: ShardedCluster[] = [];
  const clients: KvsClient[] = [];
  after(async () => {
    for (const cl of clients) cl.close();
    await Promise.all(clusters.map((c) => c.stop()));
  });

  it('sends each request to the owning group (writes to its leader), nothing relayed; falls back when the placement group is down', async () => {
    const c = new ShardedCluster(27500, 3, { http: true });
    clusters.push(c);
    await c.start(2, 64);
    const shardGroups = [1, 2];
    const addrs = (g: number): string[] => c.groups.get(g)!.replicas.map((r) => r.address);
    const config = (await readConfig(c.placement()))!;
    const ownerOf = await ownerFn(config);
    const smart = new ShardedClient({ placement: c.placement(), timeoutMs: 10_000 });
    clients.push(smart);
    await smart.ready();

    const keys = Array.from({ length: 200 }, (_, i) => `smart-${i}`);
    const owned = (g: number): number => keys.filter((k) => ownerOf(k) === g).length;
    assert.ok(owned(1) > 0 && owned(2) > 0, 'keys of both groups');
    const leadersBefore = await Promise.all(shardGroups.map((g) => c.waitForLeader(g)));
    const m0 = await scrapeShards(c, shardGroups);
    for (let i = 0; i < keys.length; i += 20) await Promise.all(keys.slice(i, i + 20).map((k) => smart.put(k, `v-${k}`)));
    const m1 = await scrapeShards(c, shardGroups);
    const leadersAfter = await Promise.all(shardGroups.map((g) => c.waitForLeader(g)));

    for (const g of shardGroups) {
      // Every put counted once, at a replica of its owner: a relayed put would be counted twice
      // (at the relaying replica and at the owner), one sent elsewhere at a replica of the other group.
      assert.equal(delta(m0, m1, addrs(g), requests('put')), owned(g), `puts answered by group ${g}`);
    }
    assert.equal(delta(m0, m1, c.endpoints(), FORWARDED), 0, 'no replica relayed a write to its leader');
    for (const [i, g] of shardGroups.entries()) {
      const before = leadersBefore[i]!;
      const now = leadersAfter[i]!;
      if (before.replicaId !== now.replicaId || before.term !== now.term) continue; // leadership moved meanwhile: no single leader to check
      const leaderAddr = c.groups.get(g)!.replicas.find((r) => r.id === now.replicaId)!.address;
      assert.equal(delta(m0, m1, [leaderAddr], requests('put')), owned(g), `group ${g}: every put answered by its leader`);
    }

    // Linearizable reads: from replicas of the owning group only.
    for (const k of keys) assert.equal(dec.decode((await smart.get(k))!), `v-${k}`);
    const m2 = await scrapeShards(c, shardGroups);
    for (const g of shardGroups) assert.equal(delta(m1, m2, addrs(g), requests('get')), owned(g), `gets answered by group ${g}`);
    assert.equal(smart.routing.fallback, 0);
    assert.equal(smart.routing.wrongGroup, 0);

    // The same counters do see server-side routing: an ordinary client talking to group 1 only.
    const plain = new KvsClient({ endpoints: addrs(1), timeoutMs: 10_000 });
    clients.push(plain);
    const theirs = keys.filter((k) => ownerOf(k) === 2).slice(0, 10);
    for (const k of theirs) await plain.put(k, `plain-${k}`);
    const m3 = await scrapeShards(c, shardGroups);
    assert.equal(delta(m2, m3, addrs(1), requests('put')), theirs.length, 'group 1 took and relayed them');
    assert.equal(delta(m2, m3, addrs(2), requests('put')), theirs.length, 'group 2 applied them');

    // A batch spanning both groups, split by the client: each part answered by its owner only.
    const batchKeys = keys.slice(0, 30);
    await smart.batch(batchKeys.map((key) => ({ op: 'put' as const, key, value: `b-${key}` })));
    const m4 = await scrapeShards(c, shardGroups);
    const partitioner = await createPartitioner(config.partitions);
    const partsOf = (g: number): number => new Set(batchKeys.filter((k) => ownerOf(k) === g).map((k) => partitioner.partitionOf(enc.encode(k)))).size;
    assert.ok(partsOf(1) > 0 && partsOf(2) > 0);
    for (const g of shardGroups) assert.equal(delta(m3, m4, addrs(g), requests('batch')), partsOf(g), `group ${g} answered one part per partition it owns`);
    for (const k of batchKeys) assert.equal(dec.decode((await smart.get(k))!), `b-${k}`);

    // The CLI's smart mode: `kvs put/get --placement LIST`, answered by the owner's leader only.
    const cliKey = keys.find((k) => ownerOf(k) === 2)!;
    await run(process.execPath, [BIN, 'put', cliKey, 'from-cli', '--placement', c.placement().join(',')], { timeout: 30_000 });
    const got = await run(process.execPath, [BIN, 'get', cliKey, '--json', '--placement', c.placement().join(',')], { timeout: 30_000 });
    assert.deepEqual(JSON.parse(got.stdout), { key: cliKey, value: 'from-cli', found: true });
    const m5 = await scrapeShards(c, shardGroups);
    assert.equal(delta(m4, m5, addrs(1), requests('put')), 0, 'the CLI put went to group 2 only');
    assert.equal(delta(m4, m5, addrs(2), requests('put')), 1);

    // The placement group down: the configured client goes on directly, a new one falls back.
    await c.stopGroup(PLACEMENT);
    const direct0 = smart.routing.direct;
    await smart.put('after-placement-down', 'x');
    assert.equal(dec.decode((await smart.get('after-placement-down'))!), 'x');
    assert.ok(smart.routing.direct > direct0);
    assert.equal(smart.routing.fallback, 0);

    const fresh = new ShardedClient({ placement: c.placement(), endpoints: c.endpoints(), timeoutMs: 10_000 });
    clients.push(fresh);
    for (const k of keys.slice(0, 20)) await fresh.put(k, `f-${k}`);
    for (const k of keys.slice(0, 20)) assert.equal(dec.decode((await fresh.get(k))!), `f-${k}`);
    await fresh.batch([
      { op: 'put', key: 'fb-1', value: '1' },
      { op: 'put', key: 'fb-2', value: '2' },
    ]);
    assert.equal(dec.decode((await fresh.get('fb-2'))!), '2');
    assert.equal(fresh.config, undefined, 'no configuration could be had');
    assert.equal(fresh.routing.direct, 0);
    assert.ok(fresh.routing.fallback >= 42, `fallback ${fresh.routing.fallback}`);

    await c.stop();
  });

  it('a batch whose answers were lost, retried through any replica, applies once: one session id per part on both paths', async () => {
    // Found in review (2026-12-07): the direct path sent the lane's own session id (or a part's
    // derived one) and any replica derived another from it, so the retry applied the batch again.
    const c = new ShardedCluster(27800, 1);
    clusters.push(c);
    await c.start(2, 64);
    const other = new KvsClient({ endpoints: c.endpoints(), timeoutMs: 10_000 });
    clients.push(other);
    const keysFor = (n: number): string[] => Array.from({ length: n }, (_, i) => `dup-${n}-${i}`);
    let lose = new Set<string>();
    class Lossy extends ShardedClient {
      protected override async send(addr: string, req: Request, direct: boolean, timeoutMs: number): Promise<Response> {
        if (req.op !== 'batch' || !direct) return super.send(addr, req, direct, timeoutMs);
        const key = dec.decode(req.ops[0]!.key);
        // Its first answer is lost after it applied; another client then writes the part's keys;
        // from then on the part's group looks unreachable, so it goes through any replica.
        if (!lose.has(key)) throw new ConnectionError(`simulated: cannot reach ${addr}`, false);
        await super.send(addr, req, direct, timeoutMs);
        lose.delete(key);
        for (const op of req.ops) await other.put(op.key, 'other-client');
        throw new ConnectionError(`simulated: connection to ${addr} closed`, true);
      }
    }
    const lossy = new Lossy({ placement: c.placement(), timeoutMs: 10_000 });
    clients.push(lossy);
    await lossy.ready();
    for (const keys of [keysFor(1), keysFor(12)]) {
      const partitioner = await createPartitioner(64);
      const partitionOf = (k: Uint8Array): number => partitioner.partitionOf(k);
      const firsts = new Map<number, string>();
      for (const k of keys) if (!firsts.has(partitionOf(enc.encode(k)))) firsts.set(partitionOf(enc.encode(k)), k);
      lose = new Set(firsts.values());
      await lossy.batch(keys.map((k) => ({ op: 'put', key: k, value: 'from-batch' })));
      for (const k of keys) assert.equal(dec.decode((await other.get(k))!), 'other-client', `${k}: the batch applied once, before the other write`);
    }
  });

  it('keeps working through a live reshard 3 → 4 with concurrent writes; a stale table is corrected by WRONG_GROUP', async (t) => {
    const c = new ShardedCluster(27600, 1);
    clusters.push(c);
    await c.start(3, 64);
    // One client that only refreshes on WRONG_GROUP, and keeps the pre-reshard table until used.
    const stale = new ShardedClient({ placement: c.placement(), pollMs: 0, timeoutMs: 15_000 });
    const smart = new ShardedClient({ placement: c.placement(), timeoutMs: 15_000 });
    clients.push(stale, smart);
    const staleConfig = await stale.ready();
    await smart.ready();

    const writers = [0, 1, 2].map((i) => new OverwritingWriter(smart, `w${i}`, 25, false));
    writers.push(new OverwritingWriter(smart, 'batch', 12, true));
    for (const w of writers) w.start();
    let final: ClusterConfig;
    try {
      await waitFor('writes before the reshard', () => writers.every((w) => w.ackCount >= 10), 60_000);
      c.startGroup(4);
      await c.waitForLeader(4);
      const cfg = await startReshard(c.placement(), c.shardGroups([1, 2, 3, 4]));
      assert.ok(cfg.moves.length > 0);
      final = await waitForMoves(c.placement(), cfg.moves.length, undefined, 120_000);
      const acks = writers.map((w) => w.ackCount);
      await waitFor('writes after the reshard', () => writers.every((w, i) => w.ackCount >= acks[i]! + 10), 60_000);
    } finally {
      for (const w of writers) await w.stop();
    }
    assert.deepEqual(new Set(final.owner), new Set([1, 2, 3, 4]));
    assert.ok(smart.routing.direct > 0);
    t.diagnostic(`during the reshard: ${JSON.stringify(smart.routing)}; acknowledged ${writers.map((w) => w.ackCount).join('/')}`);

    // Every acknowledged write readable with its latest value, through the servers' routing and directly.
    const reader = c.client(15_000);
    clients.push(reader);
    for (const w of writers) {
      assert.ok(w.acked.size > 0);
      await w.check(reader);
      await w.check(smart);
    }

    // The stale client still routes with the first table: a moved key goes to its old owner first.
    const staleOwner = await ownerFn(staleConfig);
    const finalOwner = await ownerFn((await readConfig(c.placement()))!);
    const moved = writers.flatMap((w) => [...w.acked.keys()]).filter((k) => staleOwner(k) !== finalOwner(k));
    assert.ok(moved.length > 0, 'some written key moved');
    assert.equal(stale.config?.epoch, staleConfig.epoch, 'the stale client has not refreshed yet');
    await stale.put(moved[0]!, 'via-stale');
    assert.ok(stale.routing.wrongGroup >= 1, 'the old owner answered WRONG_GROUP');
    assert.ok(stale.config!.epoch > staleConfig.epoch, 'and the client refreshed its table');
    assert.equal(stale.routing.fallback, 0);
    assert.equal(dec.decode((await reader.get(moved[0]!))!), 'via-stale');
    const wrong = stale.routing.wrongGroup;
    for (const k of moved.slice(1, 10)) await stale.get(k);
    assert.equal(stale.routing.wrongGroup, wrong, 'with the fresh table, no more WRONG_GROUP');
  });
});
