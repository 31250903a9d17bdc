// Resharding 3 → 4 shard groups with N preloaded keys while a load generator writes: total
// duration, the longest write pause any single partition saw, and write throughput during the move
// against before it. Not a test.
//   node --import tsx bench/reshard.ts [--keys 1000000] [--replicas 3] [--partitions 1024] [--inflight 64]
import { KvsClient } from '../src/client/client.ts';
import { createPartitioner } from '../src/partition/index.ts';
import { startReshard, waitForMoves } from '../src/resharding/admin.ts';
import { ShardedCluster } from '../test/resharding/cluster.ts';
import { machine, printResult } from './machine.ts';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const KEYS = arg('keys', 1_000_000);
const REPLICAS = arg('replicas', 3);
const PARTITIONS = arg('partitions', 1024);
const INFLIGHT = arg('inflight', 64);
const value = Buffer.alloc(100, 120);

console.log(`# reshard 3 → 4 groups × ${REPLICAS} replicas, ${KEYS.toLocaleString('en-US')} keys of 100 B, ${PARTITIONS} partitions, ${INFLIGHT} writes in flight`);
console.log(`# ${machine()}`);
console.log(`# command: node --import tsx bench/reshard.ts --keys ${KEYS} --replicas ${REPLICAS} --partitions ${PARTITIONS} --inflight ${INFLIGHT}`);

const cluster = new ShardedCluster(25000, REPLICAS);
try {
  await cluster.start(3, PARTITIONS);
  const partitioner = await createPartitioner(PARTITIONS);
  await preload(cluster, partitioner.partitionOf, KEYS);

  // The load: writes spread over every partition; per partition, the time of its last success.
  const lastOk = new Float64Array(PARTITIONS).fill(performance.now());
  const maxGap = new Float64Array(PARTITIONS);
  let writes = 0;
  let running = true;
  const client = new KvsClient({ endpoints: cluster.endpoints(), timeoutMs: 30_000, maxInFlightWrites: INFLIGHT, poolSize: 2 });
  const keyFor = (i: number): Buffer => Buffer.from(`load-${i % 100_000}`);
  const workers = Array.from({ length: INFLIGHT }, async (_, w) => {
    for (let i = w; running; i += INFLIGHT) {
      const key = keyFor(i);
      const p = partitioner.partitionOf(key);
      try {
        await client.put(key, value);
        const now = performance.now();
        maxGap[p] = Math.max(maxGap[p]!, now - lastOk[p]!);
        lastOk[p] = now;
        writes++;
      } catch {
        // counted as a pause: the next success measures the gap
      }
    }
  });
  const rate = async (ms: number): Promise<number> => {
    const w0 = writes;
    await new Promise((r) => setTimeout(r, ms));
    return ((writes - w0) * 1000) / ms;
  };
  await rate(3000); // warm-up
  const before = await rate(5000);
  maxGap.fill(0);
  lastOk.fill(performance.now());

  cluster.startGroup(4);
  await cluster.waitForLeader(4);
  const t0 = performance.now();
  const w0 = writes;
  const cfg = await startReshard(cluster.placement(), cluster.shardGroups([1, 2, 3, 4]));
  await waitForMoves(cluster.placement(), cfg.moves.length, undefined, 30 * 60_000);
  const seconds = (performance.now() - t0) / 1000;
  const during = (writes - w0) / seconds;
  running = false;
  await Promise.all(workers);
  client.close();

  const moved = new Set(cfg.moves.map((m) => m.partition));
  let worst = 0;
  let worstUnmoved = 0;
  maxGap.forEach((g, p) => {
    if (moved.has(p)) worst = Math.max(worst, g);
    else worstUnmoved = Math.max(worstUnmoved, g);
  });
  console.log(`partitions moved:        ${cfg.moves.length} of ${PARTITIONS}`);
  console.log(`reshard duration:        ${seconds.toFixed(1)} s`);
  console.log(`longest write pause:     ${worst.toFixed(0)} ms (a moved partition); ${worstUnmoved.toFixed(0)} ms (a partition that did not move)`);
  console.log(`write throughput:        ${before.toFixed(0)}/s before, ${during.toFixed(0)}/s during (${(during / before).toFixed(2)}x)`);
  printResult({ bench: 'reshard', system: 'sharded-kvs', keys: KEYS, replicas: REPLICAS, moved: cfg.moves.length, seconds: +seconds.toFixed(1), max_pause_ms: Math.round(worst), before_ops_per_s: Math.round(before), during_ops_per_s: Math.round(during) });
} finally {
  await cluster.stop();
}

/** Loads keys fast: batches of one partition each (a batch is atomic within a partition). */
async function preload(c: ShardedCluster, partitionOf: (k: Uint8Array) => number, n: number): Promise<void> {
  const client = new KvsClient({ endpoints: c.endpoints(), timeoutMs: 60_000, maxInFlightWrites: 64, poolSize: 2 });
  const t0 = performance.now();
  const byPartition = new Map<number, Buffer[]>();
  const pending: Promise<void>[] = [];
  const flush = async (keys: Buffer[]): Promise<void> => {
    await client.batch(keys.map((key) => ({ op: 'put' as const, key, value })));
  };
  for (let i = 0; i < n; i++) {
    const key = Buffer.from(`key-${String(i).padStart(8, '0')}`);
    const p = partitionOf(key);
    const list = byPartition.get(p) ?? [];
    list.push(key);
    byPartition.set(p, list);
    if (list.length === 200) {
      byPartition.delete(p);
      pending.push(flush(list));
      if (pending.length >= 64) await Promise.all(pending.splice(0));
    }
  }
  for (const list of byPartition.values()) pending.push(flush(list));
  await Promise.all(pending);
  client.close();
  console.log(`preloaded ${n.toLocaleString('en-US')} keys in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
