// Issue 16's first target: the sharded cluster through its RESP doors against one group of 3
// replicas alone, with Debian's redis-benchmark (-c 50 -d 100 -r 100000) as the load. The sharded
// cluster (placement group + 3 shard groups × 3) runs in both layouts: a process per replica and
// 3 `kvs host` processes (kvs up's default). Its load is spread over 3 RESP doors, one shard
// replica on each host (group 1 replica 1, group 2 replica 2, group 3 replica 3: the same replicas
// in both layouts), 17 connections each, so a door forwards keys it does not own as a plain client's
// requests would be; the single group gets all 50 connections on its leader's door. The systems run
// one at a time (each started fresh, measured, stopped), in a rotated order each repetition.
// GETs read keys the SET pass wrote (same key space). Not a test.
//   node --import tsx bench/cluster-resp.ts [--reps 2] [--seconds 5] [--processes-each 0]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { machine, numberFlag, printResult } from './machine.ts';
import { runRedisBenchmark } from './redis-benchmark.ts';
import { startKvs, type KvsSystem } from './systems/kvs.ts';
import { stopAll } from './systems/procs.ts';

const REPS = numberFlag('reps', 2);
const SECONDS = numberFlag('seconds', 5);
const CLIENTS = 50;
const KEYSPACE = 100_000;
const VALUE = 100;

interface Layout {
  name: string;
  start(dir: string): Promise<KvsSystem>;
  /** RESP doors the load is spread over, with connections for each. */
  doors(sys: KvsSystem): Promise<{ address: string; clients: number }[]>;
}

const layouts: Layout[] = [
  {
    name: '1 group',
    start: (dir) => startKvs({ dir, basePort: 25000 }),
    doors: async (sys) => [{ address: (await sys.leaders())[0]!.endpoints.resp!, clients: CLIENTS }],
  },
  {
    name: '3 groups, a process per replica',
    start: (dir) => startKvs({ dir, basePort: 25400, shards: 3 }),
    doors: async (sys) => spread(sys),
  },
  {
    name: '3 groups, 3 processes',
    start: (dir) => startKvs({ dir, basePort: 25800, shards: 3, hosts: 3 }),
    doors: async (sys) => spread(sys),
  },
];

function spread(sys: KvsSystem): { address: string; clients: number }[] {
  const per = Math.ceil(CLIENTS / sys.groups.length);
  return sys.groups.map((g, i) => ({ address: g.replicas[i % g.replicas.length]!.endpoints.resp!, clients: per }));
}

// --processes-each 0 leaves the process-per-replica layout out (the slowest, and not the default).
if (numberFlag('processes-each', 1) === 0) layouts.splice(layouts.findIndex((l) => l.name.includes('a process per replica')), 1);

const results = new Map<string, { set: number[]; get: number[] }>(layouts.map((l) => [l.name, { set: [], get: [] }]));
console.log(`# RESP doors: redis-benchmark -c ${CLIENTS} -d ${VALUE} -r ${KEYSPACE}, ${SECONDS} s per pass, ${REPS} repetitions`);
console.log(`# ${machine()}`);
console.log(`# command: node --import tsx bench/cluster-resp.ts ${process.argv.slice(2).join(' ')}`);
const root = mkdtempSync(join(tmpdir(), 'kvs-cluster-resp-'));
try {
  for (let rep = 0; rep < REPS; rep++) {
    for (const layout of layouts.map((_, i) => layouts[(i + rep) % layouts.length]!)) {
      const dir = join(root, `${rep}-${layout.name.replace(/\W+/g, '-')}`);
      const sys = await layout.start(dir);
      try {
        const doors = await layout.doors(sys);
        for (const test of ['set', 'get'] as const) {
          // One redis-benchmark per door, all at once; the rates add up.
          const runs = await Promise.all(
            doors.map((d) =>
              runRedisBenchmark({
                system: layout.name,
                host: '127.0.0.1',
                port: Number(d.address.split(':').pop()),
                test,
                clients: d.clients,
                pipeline: 1,
                dataSize: VALUE,
                keyspace: KEYSPACE,
                seconds: SECONDS,
                serverPids: sys.pids(),
              }),
            ),
          );
          const rate = runs.reduce((s, r) => s + r.rate, 0);
          const p50 = Math.max(...runs.map((r) => Number(r.line.p50_ms)));
          // Every run watched the same server processes over about the same window: their mean
          // is the servers' cores, and per op it is divided by all doors' requests together.
          const cores = runs.reduce((s, r) => s + Number(r.line.server_cpu), 0) / runs.length;
          const cpuMsPerOp = rate > 0 ? Math.round((cores * 1e6) / rate) / 1000 : -1;
          results.get(layout.name)![test].push(rate);
          console.log(`${layout.name.padEnd(34)} ${test.toUpperCase()} ${Math.round(rate)} ops/s over ${doors.length} door(s), p50 ≤ ${p50} ms, servers ${cores.toFixed(2)} cores = ${cpuMsPerOp} ms CPU/op (rep ${rep + 1})`);
          printResult({ bench: 'cluster-resp', layout: layout.name, test, rep, ops_per_s: Math.round(rate), doors: doors.length, p50_ms_max: p50, server_cores: Math.round(cores * 100) / 100, server_cpu_ms_per_op: cpuMsPerOp });
        }
      } finally {
        await sys.stop();
      }
    }
  }
} finally {
  await stopAll();
  rmSync(root, { recursive: true, force: true });
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const one = results.get('1 group')!;
console.log('\n| layout | SET ops/s | GET ops/s | SET vs 1 group | GET vs 1 group |\n|---|---:|---:|---:|---:|');
for (const [name, r] of results) {
  const s = median(r.set);
  const g = median(r.get);
  console.log(`| ${name} | ${Math.round(s)} | ${Math.round(g)} | ${(s / median(one.set)).toFixed(2)}× | ${(g / median(one.get)).toFixed(2)}× |`);
}
console.log('target (issue 16): the sharded cluster ≥ 1× one group for SET and GET');
