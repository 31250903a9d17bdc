// Resharding 3 → 4 shard groups with N preloaded keys while a load generator writes: total
// duration, the longest write pause any single partition saw, and write throughput during the move
// against before it. Not a test.
//
// A partition's pause is the longest a single write to it waited for its answer: the client retries
// through a hand-off, so a write caught in one waits it out. It is shown for moved partitions
// against partitions that stayed (whose waits are the ordinary latency tail). The load goes through
// the smart client (ShardedClient: straight to the owning group's leader), or with --via-any-replica
// through a plain client and the servers' routing.
//   node --import tsx bench/reshard.ts [--keys 1000000] [--replicas 3] [--partitions 1024] [--wave 64] [--inflight 64 | --rate 1000] [--via-any-replica] [--hosts 3]
import { KvsClient } from '../src/client/client.ts';
import { ShardedClient } from '../src/client/sharded-client.ts';
import { createPartitioner } from '../src/partition/index.ts';
import { startReshard, waitForMoves } from '../src/resharding/admin.ts';
import { ShardedCluster } from '../test/resharding/cluster.ts';
import { machine, numberFlag as arg, printResult } from './machine.ts';

const KEYS = arg('keys', 1_000_000);
const REPLICAS = arg('replicas', 3);
const PARTITIONS = arg('partitions', 1024);
const INFLIGHT = arg('inflight', 64);
const VIA_ANY_REPLICA = process.argv.includes('--via-any-replica');
const RATE = arg('rate', 0);
const WAVE = arg('wave', 64);
/** --hosts N: the replicas in N `kvs host` processes (kvs up's default layout); 0: a process each. */
const HOSTS = arg('hosts', 0);
const value = Buffer.alloc(100, 120);

console.log(`# reshard 3 → 4 groups × ${REPLICAS} replicas, ${KEYS.toLocaleString('en-US')} keys of 100 B, ${PARTITIONS} partitions, ${INFLIGHT} writes in flight`);
console.log(`# ${machine()}`);
console.log(`# command: node --import tsx bench/reshard.ts --keys ${KEYS} --replicas ${REPLICAS} --partitions ${PARTITIONS} --wave ${WAVE} --inflight ${INFLIGHT}${RATE > 0 ? ` --rate ${RATE}` : ''}${VIA_ANY_REPLICA ? ' --via-any-replica' : ''}${HOSTS ? ` --hosts ${HOSTS}` : ''}`);

const cluster = new ShardedCluster(25000, REPLICAS, { http: true, serverArgs: ['--handoff-wave', String(WAVE)], ...(HOSTS ? { hosts: HOSTS } : {}) });

/** The longest event-loop stall of each shard replica since the previous call (the gauge resets on each scrape). */
async function loopStalls(groups: number[]): Promise<{ group: number; address: string; ms: number }[]> {
  const out: { group: number; address: string; ms: number }[] = [];
  for (const g of groups) {
    for (const r of cluster.groups.get(g)?.replicas ?? []) {
      try {
        const text = await (await fetch(`http://${cluster.httpAddress(r.address)}/metrics`)).text();
        const line = text.split('\n').find((l) => l.startsWith('nodejs_eventloop_lag_max_seconds '));
        if (line) out.push({ group: g, address: r.address, ms: Math.round(Number(line.split(' ')[1]) * 1000) });
      } catch {
        // a replica that does not answer has no figure
      }
    }
  }
  return out;
}
try {
  await cluster.start(3, PARTITIONS);
  const partitioner = await createPartitioner(PARTITIONS);
  await preload(cluster, partitioner.partitionOf, KEYS);

  // The load: writes spread over every partition. Closed loop (--inflight writers, each waiting for
  // its answer) or open loop (--rate arrivals/s, each write sent on time whatever the others do: a
  // write stuck in a hand-off then holds up nobody else, so the rate during the move shows whether
  // the partitions that stay are affected).
  const maxWait = new Float64Array(PARTITIONS);
  let waits: { p: number; ms: number }[] = [];
  let writes = 0;
  let running = true;
  const lanes = RATE > 0 ? 8192 : INFLIGHT;
  const clientOpts = { endpoints: cluster.endpoints(), timeoutMs: 30_000, maxInFlightWrites: lanes, poolSize: 2 };
  const client = VIA_ANY_REPLICA ? new KvsClient(clientOpts) : new ShardedClient({ ...clientOpts, placement: cluster.placement() });
  const keyFor = (i: number): Buffer => Buffer.from(`load-${i % 100_000}`);
  const writeOne = async (i: number): Promise<void> => {
    const key = keyFor(i);
    const p = partitioner.partitionOf(key);
    const sent = performance.now();
    try {
      await client.put(key, value);
      const ms = performance.now() - sent;
      maxWait[p] = Math.max(maxWait[p]!, ms);
      waits.push({ p, ms });
      writes++;
    } catch {
      // failed after the client's retries and deadline: not counted as a write
    }
  };
  const load: Promise<unknown> =
    RATE > 0
      ? (async () => {
          const pending = new Set<Promise<void>>();
          const t0 = performance.now();
          let sent = 0;
          while (running) {
            const due = Math.floor(((performance.now() - t0) * RATE) / 1000);
            for (; sent < due && pending.size < 50_000; sent++) {
              const w = writeOne(sent);
              pending.add(w);
              void w.finally(() => pending.delete(w));
            }
            await new Promise((r) => setTimeout(r, 5));
          }
          await Promise.all(pending);
        })()
      : Promise.all(
          Array.from({ length: INFLIGHT }, async (_, w) => {
            for (let i = w; running; i += INFLIGHT) await writeOne(i);
          }),
        );
  const rate = async (ms: number): Promise<number> => {
    const w0 = writes;
    await new Promise((r) => setTimeout(r, ms));
    return ((writes - w0) * 1000) / ms;
  };
  await rate(3000); // warm-up
  waits = [];
  const before = await rate(5000);
  const waitsBefore = waits;
  maxWait.fill(0);

  cluster.startGroup(4);
  await cluster.waitForLeader(4);
  await loopStalls([1, 2, 3, 4]); // resets each replica's gauge: the next scrape covers the reshard
  waits = [];
  const t0 = performance.now();
  const startedAt = Date.now();
  const w0 = writes;
  const cfg = await startReshard(cluster.placement(), cluster.shardGroups([1, 2, 3, 4]));
  await waitForMoves(cluster.placement(), cfg.moves.length, undefined, 30 * 60_000);
  const seconds = (performance.now() - t0) / 1000;
  const during = (writes - w0) / seconds;
  const waitsDuring = waits;
  const stalls = await loopStalls([1, 2, 3, 4]);
  running = false;
  await load;
  client.close();

  // The destination leaders' own account of each wave (src/resharding/reconciler.ts).
  // The replicas' log lines are JSON (stderr is a pipe here; docs/operations.md).
  const lines = [...cluster.logs.values()].flatMap((l) => l.join('').split('\n'));
  const waves = lines.filter((l) => l.includes('"msg":"received partitions"')).map((l) => JSON.parse(l) as { ms: number; phases: string[]; keys: number; from: number });
  for (const w of waves) console.log(`wave from group ${w.from}: ${w.keys} keys in ${w.ms} ms (${w.phases.join(', ')})`);
  // A failed step is redone from its start (its purge then clears what the failed attempt imported).
  const failed = lines.filter((l) => l.includes('"msg":"hand-off step failed'));
  if (failed.length > 0) console.log(`hand-off steps that failed and were retried: ${failed.length}; first: ${failed[0]}`);
  // Elections after the start: a leader change during a wave is what makes it fail.
  const elections = lines.filter((l) => l.includes('"msg":"raft state changed"') && l.includes('"role":"leader"')).map((l) => JSON.parse(l) as { ts: string; group: number; replica: number; term: number }).filter((e) => Date.parse(e.ts) >= startedAt);
  for (const e of elections) console.log(`leader elected during the reshard: group ${e.group}, replica ${e.replica}, term ${e.term}, at ${e.ts}`);
  // An election follows a leader whose event loop stalled past the election timeout.
  const byGroup = [1, 2, 3, 4].map((g) => `group ${g}: ${stalls.filter((x) => x.group === g).map((x) => x.ms).join('/')} ms`);
  console.log(`longest event-loop stall per replica during the reshard: ${byGroup.join('; ')}`);
  waves.sort((a, b) => a.ms - b.ms);
  if (waves.length > 0) console.log(`waves: ${waves.length}, median ${waves[waves.length >> 1]!.ms} ms; slowest: ${JSON.stringify(waves.at(-1))}`);
  const moved = new Set(cfg.moves.map((m) => m.partition));
  const worstOf = (a: Float64Array, inMoved: boolean): number => a.reduce((m, g, p) => (moved.has(p) === inMoved ? Math.max(m, g) : m), 0);
  const [waitMoved, waitStayed] = [worstOf(maxWait, true), worstOf(maxWait, false)];
  console.log(`partitions moved:        ${cfg.moves.length} of ${PARTITIONS}`);
  console.log(`reshard duration:        ${seconds.toFixed(1)} s`);
  console.log(`longest single write:    ${waitMoved.toFixed(0)} ms (a moved partition); ${waitStayed.toFixed(0)} ms (a partition that stayed)`);
  console.log(`write throughput:        ${before.toFixed(0)}/s before, ${during.toFixed(0)}/s during (${(during / before).toFixed(2)}x)`);
  const p99 = (list: { p: number; ms: number }[]): number => percentile(list.filter((w) => !moved.has(w.p)).map((w) => w.ms), 0.99);
  const [stayedBefore, stayedDuring] = [p99(waitsBefore), p99(waitsDuring)];
  console.log(`p99, partitions that stayed: ${stayedBefore.toFixed(1)} ms before, ${stayedDuring.toFixed(1)} ms during`);
  printResult({ bench: 'reshard', system: 'sharded-kvs', client: VIA_ANY_REPLICA ? 'any-replica' : 'smart', keys: KEYS, replicas: REPLICAS, moved: cfg.moves.length, seconds: +seconds.toFixed(1), max_pause_ms: Math.round(waitMoved), max_wait_stayed_ms: Math.round(waitStayed), before_ops_per_s: Math.round(before), during_ops_per_s: Math.round(during), stayed_p99_before_ms: +stayedBefore.toFixed(1), stayed_p99_during_ms: +stayedDuring.toFixed(1), loop: RATE > 0 ? 'open' : 'closed', rate: RATE, wave: WAVE });
} finally {
  await cluster.stop();
}

function percentile(xs: number[], q: number): number {
  if (xs.length === 0) return 0;
  const sorted = xs.sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
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
