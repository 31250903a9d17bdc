// `make bench-compare`: starts this store (3 replicas), etcd (3 members) and Redis (appendfsync
// always; persistence off) on 127.0.0.1, runs the workload matrix with repetitions interleaved
// across systems, runs redis-benchmark against Redis and our RESP door, an open-loop sweep and the
// shard-group check, stops everything, and writes bench/results/<date>-<commit>.{json,md,svg}.
//
//   node --import tsx bench/compare.ts [--reps 3] [--duration 3] [--warmup 1] [--quick]
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { etcdSystem, gitCommit, kvsSystem, redisSystem, type BenchSystem } from './compare/systems.ts';
import { computeTargets } from './compare/targets.ts';
import { preloadKeys, runGenerator } from './load/generator.ts';
import { humanLine, resultLine, type ResultLine } from './load/summary.ts';
import { DEFAULT_SPEC, type LoadSpec, type WorkloadName } from './load/workload.ts';
import type { KeyDist } from './load/keys.ts';
import { machine, printResult } from './machine.ts';
import { runRedisBenchmark } from './redis-benchmark.ts';
import { summarize, median, type CellRow } from './report/summarize.ts';
import { renderSvg } from './report/svg.ts';
import { markdownReport, resultsTable, targetsTable, type OpenLoopPoint } from './report/table.ts';
import { startEtcd } from './systems/etcd.ts';
import { shardingAvailable, snapshotServer, startKvs, type KvsSystem } from './systems/kvs.ts';
import { KeySpace } from './load/keys.ts';
import { stopAll } from './systems/procs.ts';
import { startRedis } from './systems/redis.ts';

const ROOT = resolve(fileURLToPath(import.meta.url), '../..');
const PORTS = { kvs: 23000, etcd: 23400, redisAlways: 23501, redisNone: 23502, kvsShards: 23600 };

const { values: v } = parseArgs({
  options: {
    reps: { type: 'string', default: '3' },
    duration: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '1' },
    keys: { type: 'string', default: String(DEFAULT_SPEC.keys) },
    inflight: { type: 'string', default: String(DEFAULT_SPEC.inflight) },
    quick: { type: 'boolean', default: false },
    'skip-shards': { type: 'boolean', default: false },
    'skip-open': { type: 'boolean', default: false },
    out: { type: 'string', default: join(ROOT, 'bench/results') },
    keep: { type: 'boolean', default: false },
    systems: { type: 'string' },
  },
});

const quick = v.quick!;
const REPS = quick ? 1 : Number(v.reps);
const base: LoadSpec = {
  ...DEFAULT_SPEC,
  keys: Number(v.keys),
  inflight: Number(v.inflight),
  warmupS: quick ? 0.5 : Number(v.warmup),
  durationS: quick ? 1.5 : Number(v.duration),
};
/** write/uniform and C/uniform carry the targets; A, B, C zipfian are YCSB's own defaults. */
const LOAD_CELLS: [WorkloadName, KeyDist][] = quick
  ? [['write', 'uniform'], ['C', 'uniform']]
  : [['write', 'uniform'], ['C', 'uniform'], ['A', 'zipf'], ['B', 'zipf'], ['C', 'zipf']];
const RB_PIPELINES = quick ? [1] : [1, 16];
const OPEN_FRACTIONS = quick ? [0.5] : [0.25, 0.5, 0.75, 0.9];
const SHARD_GROUPS = 3;
/** Writes/s of the light-load point (the write-path targets: p50 and CPU per write). */
const LIGHT_RATE = 1000;

const started = Date.now();
const runDir = mkdtempSync(join(tmpdir(), 'kvs-bench-'));
// Also on Ctrl-C / SIGTERM (procs.ts stops the servers, then exits).
process.on('exit', () => {
  if (!v.keep) rmSync(runDir, { recursive: true, force: true });
});
const lines: ResultLine[] = [];
const command = `make bench-compare${process.argv.length > 2 ? ` BENCH_ARGS="${process.argv.slice(2).join(' ')}"` : ''}`;
const log = (s: string): void => console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${s}`);

function record(line: ResultLine): void {
  lines.push(line);
  console.log(`        ${humanLine(line)}`);
  printResult(line);
}

async function loadRun(sys: BenchSystem, spec: LoadSpec, cell: string, rep: number): Promise<ResultLine | undefined> {
  try {
    const r = await runGenerator({
      protocol: sys.protocol,
      target: await sys.target(),
      spec,
      procs: sys.procs,
      // RESP answers in order on a connection (and our door runs a connection's writes one at a
      // time), so RESP clients pool connections: one request in flight on each, like redis-benchmark.
      conns: sys.protocol === 'resp' ? Math.max(1, Math.round(spec.inflight / sys.procs)) : sys.conns,
      sessions: true,
      linearizable: true,
      preload: false,
      serverPids: sys.pids(),
      fork: true,
    });
    const line = resultLine('load', sys.name, sys.protocol, spec, r, { cell, rep, procs: sys.procs });
    record(line);
    return line;
  } catch (e) {
    log(`${cell}: failed: ${(e as Error).message}`);
    return undefined;
  }
}

async function main(): Promise<void> {
  const commit = await gitCommit();
  log(`run dir ${runDir}; ${machine()}; commit ${commit}`);
  snapshotServer(join(runDir, 'tree'));
  const notes: string[] = [];
  // Another job on the machine may kill our servers (it happened): restart them, and say so.
  const onRestart = (why: string): void => {
    log(why);
    notes.push(`a server died during the run and was restarted: ${why}`);
  };
  const [kvs, etcd, redisAlways, redisNone] = await Promise.all([
    startKvs({ dir: join(runDir, 'kvs'), basePort: PORTS.kvs, onRestart }),
    startEtcd(join(runDir, 'etcd'), PORTS.etcd),
    startRedis(join(runDir, 'redis-always'), PORTS.redisAlways, 'always'),
    startRedis(join(runDir, 'redis-none'), PORTS.redisNone, 'none'),
  ]);
  log(`started: kvs (doors: ${kvs.doors.join(', ')}), etcd, redis ×2`);
  const kvsNative = kvsSystem('kvs', kvs, 'native');
  const wanted = v.systems?.split(',');
  const systems: BenchSystem[] = [
    kvsNative,
    ...(kvs.doors.includes('resp') ? [kvsSystem('kvs-resp', kvs, 'resp')] : []),
    ...(kvs.doors.includes('grpc') ? [kvsSystem('kvs-grpc', kvs, 'grpc')] : []),
    etcdSystem(etcd),
    redisSystem('redis-always', redisAlways),
    redisSystem('redis-none', redisNone),
  ].filter((s) => !wanted || wanted.includes(s.name));
  if (!kvs.doors.includes('resp')) notes.push("this store's RESP door is not in `kvs server` yet: kvs-resp rows are missing");
  if (!kvs.doors.includes('grpc')) notes.push("this store's gRPC door is not in `kvs server` yet: kvs-grpc rows are missing");

  // Read workloads need every key present; each store is loaded once (kvs through its native door).
  for (const sys of [kvsNative, ...systems.filter((s) => !s.name.startsWith('kvs'))]) {
    // (Also the warm-up of each store's write path: the first seconds of a fresh server are slower.)
    const p = await preloadKeys(sys.protocol, await sys.target(), base);
    log(`preloaded ${base.keys} keys into ${sys.name}${p.errors ? ` (${p.errors} errors: ${p.lastError})` : ''}`);
  }

  const rbSystems = systems.filter((s) => s.respAddress);
  const rbRates = new Map<string, number>();
  for (let rep = 0; rep < REPS; rep++) {
    log(`repetition ${rep + 1}/${REPS}`);
    // Systems take turns within every workload, in a rotated order each repetition, so a noisy
    // minute on the machine hits all of them rather than one.
    const order = systems.map((_, i) => systems[(i + rep) % systems.length]!);
    for (const [workload, dist] of LOAD_CELLS) {
      for (const sys of order) await loadRun(sys, { ...base, workload, dist }, `load/${sys.name}/${workload}/${dist}`, rep);
    }
    for (const test of ['set', 'get'] as const) {
      for (const pipeline of RB_PIPELINES) {
        for (const sys of rbSystems.map((_, i) => rbSystems[(i + rep) % rbSystems.length]!)) {
          const cell = `rb/${sys.name}/${test}/P${pipeline}`;
          try {
            const { line, rate } = await runRedisBenchmark({
              system: sys.name,
              host: '127.0.0.1',
              port: Number((await sys.respAddress!()).split(':')[1]),
              test,
              clients: 50,
              pipeline,
              dataSize: base.valueSize,
              keyspace: base.keys,
              seconds: base.durationS,
              serverPids: sys.pids(),
              expectRate: rbRates.get(cell),
            });
            rbRates.set(cell, rate);
            record({ ...line, cell, rep });
          } catch (e) {
            log(`${cell}: failed: ${(e as Error).message}`);
          }
        }
      }
    }
  }

  // Open loop: latency at fractions of each durable system's closed-loop write throughput.
  const open: OpenLoopPoint[] = [];
  if (!v['skip-open']) {
    log('open-loop sweep (write-only)');
    for (const sys of systems.filter((s) => s.name === 'kvs' || s.name === 'etcd')) {
      const peak = median(lines.filter((l) => l.cell === `load/${sys.name}/write/uniform`).map((l) => Number(l.ops_per_s)));
      if (!(peak > 0)) continue;
      for (const f of OPEN_FRACTIONS) {
        const spec = { ...base, rate: Math.round(peak * f), inflight: 1024 };
        const line = await loadRun(sys, spec, `open/${sys.name}/${f}`, 0);
        if (line) open.push({ system: sys.name, offered: spec.rate, achieved: Number(line.ops_per_s), p50: Number(line.p50_ms), p99: Number(line.p99_ms), backlog: Number(line.backlog ?? 0) });
      }
    }
  }

  // Light load: a fixed open-loop rate for the latency and CPU-per-write targets, in every
  // repetition, systems alternating.
  if (!v['skip-open']) {
    log(`light load: open loop at ${LIGHT_RATE} writes/s`);
    const durable = systems.filter((s) => s.name === 'kvs' || s.name === 'etcd');
    for (let rep = 0; rep < REPS; rep++) {
      for (const sys of durable.map((_, i) => durable[(i + rep) % durable.length]!)) {
        await loadRun(sys, { ...base, rate: LIGHT_RATE, inflight: 1024 }, `light/${sys.name}`, rep);
      }
    }
  }

  // Shard groups: the same 2 cores, 1 group vs SHARD_GROUPS groups, the same total load; the groups
  // first with one process per replica, then in 3 host processes (kvs up's default layout).
  if (!v['skip-shards']) {
    log(`shard groups: stopping etcd and redis, starting ${SHARD_GROUPS} groups × 3 replicas`);
    await Promise.all([etcd.stop(), redisAlways.stop(), redisNone.stop()]);
    const sharded = shardingAvailable();
    notes.push(sharded ? `${SHARD_GROUPS}g: a placement group and ${SHARD_GROUPS} shard groups of 3 replicas; the generator routes each key to its owner's leader` : `${SHARD_GROUPS}g: ${SHARD_GROUPS} independent groups, keys split on the client side (no --placement in this build)`);
    notes.push(`shards/: one process per replica; shards-3p/: the same groups in 3 kvs host processes (kvs up --processes 3), each beside the same 1-group cluster`);
    for (const layout of [{ cells: 'shards', hosts: undefined }, { cells: 'shards-3p', hosts: 3 }]) {
      let shards: KvsSystem | undefined;
      try {
        // Real sharding (placement group + shard groups) when the build has it; else independent
        // groups with keys split on the client side, which measures the same CPU question.
        shards = await startKvs({ dir: join(runDir, `kvs-${layout.cells}`), basePort: PORTS.kvsShards, ...(sharded ? { shards: SHARD_GROUPS } : { groups: SHARD_GROUPS }), ...(layout.hosts ? { hosts: layout.hosts } : {}), onRestart });
        const space = new KeySpace(base.keys, base.keySize, base.valueSize);
        const pair = [kvsSystem('kvs-1g', kvs, 'native'), kvsSystem(`kvs-${SHARD_GROUPS}g`, shards, 'native', space)];
        const spec = { ...base, inflight: base.inflight * SHARD_GROUPS };
        // Fresh servers run cold (JIT, LMDB maps): one unrecorded run first.
        await runGenerator({ protocol: 'native', target: await pair[1]!.target(), spec: { ...spec, warmupS: 0, durationS: 2 }, procs: 1, conns: 1, sessions: true, linearizable: true, preload: false, serverPids: [], fork: true }).catch(() => undefined);
        for (let rep = 0; rep < REPS; rep++) {
          for (const sys of rep % 2 ? [...pair].reverse() : pair) await loadRun(sys, spec, `${layout.cells}/${sys.name}`, rep);
        }
      } catch (e) {
        log(`shard groups (${layout.cells}): failed: ${(e as Error).message}`);
      } finally {
        await shards?.stop();
      }
    }
  }
  await stopAll();
  log('stopped every process');

  const minutes = (Date.now() - started) / 60_000;
  const cells = [...new Set(lines.map((l) => String(l.cell)))];
  const rows: CellRow[] = cells.filter((c) => !c.startsWith('open/')).map((c) => summarize(c, lines.filter((l) => l.cell === c)));
  const targets = computeTargets(lines, SHARD_GROUPS);
  const date = new Date().toISOString().slice(0, 10);
  const stem = `${date}-${commit}`;
  const noise = median(lines.map((l) => Number(l.machine_busy) - Number(l.client_cpu) - Number(l.server_cpu)).filter((x) => Number.isFinite(x)));
  notes.push(`${REPS} repetitions of ${base.durationS} s after ${base.warmupS} s warm-up; ${base.keys} keys of ${base.keySize} B, values of ${base.valueSize} B; closed loop, ${base.inflight} in flight`);
  notes.push(`CPU used by neither the generator nor the measured servers (other jobs, idle systems, kernel): median ${noise.toFixed(2)} cores of 2`);
  const meta = { date: new Date().toISOString(), commit, machine: machine(), command, minutes, notes };
  mkdirSync(v.out!, { recursive: true });
  writeFileSync(join(v.out!, `${stem}.json`), `${JSON.stringify({ meta, config: { reps: REPS, spec: base, cells: LOAD_CELLS }, targets, rows, open, lines }, null, 1)}\n`);
  writeFileSync(join(v.out!, `${stem}.svg`), renderSvg(`sharded-kvs vs etcd vs Redis — ${date}, ${commit}, 2-core loopback`, rows, open));
  writeFileSync(join(v.out!, `${stem}.md`), `${markdownReport(meta, rows, targets, open, `${stem}.svg`)}\n`);
  const block = [`Latest: ${meta.date}, commit ${commit}, \`${command}\`, ${meta.machine}.`, '', targetsTable(targets), '', resultsTable(rows), '', `![results](${'bench/results/'}${stem}.svg)`].join('\n');
  // Only a full run into bench/results updates the published tables.
  const published = !quick && resolve(v.out!) === join(ROOT, 'bench/results');
  if (published) for (const f of ['README.md', 'docs/benchmarks.md']) refreshBlock(join(ROOT, f), f === 'README.md' ? block : block.replace('](bench/results/', '](../bench/results/'));
  log(`wrote ${join(v.out!, stem)}.{json,md,svg} in ${minutes.toFixed(1)} min`);
  console.log(`\n${targetsTable(targets)}\n`);
  printResult({
    bench: 'compare',
    system: 'all',
    commit,
    minutes: Math.round(minutes * 10) / 10,
    ...Object.fromEntries(targets.map((t) => [t.name.replace(/\W+/g, '_'), Number.isFinite(t.ratio) ? Math.round(t.ratio * 100) / 100 : -1])),
  });
}

/** Replaces the text between <!-- bench:begin --> and <!-- bench:end --> in a file that has them. */
function refreshBlock(path: string, block: string): void {
  if (!existsSync(path)) return;
  const text = readFileSync(path, 'utf8');
  const re = /(<!-- bench:begin -->\n)[\s\S]*?(\n<!-- bench:end -->)/;
  if (!re.test(text)) return;
  writeFileSync(path, text.replace(re, `$1${block.replace(/\$/g, '$$$$')}$2`));
}

main()
  .catch(async (e: unknown) => {
    console.error(`bench-compare: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exitCode = 1;
    await stopAll(2000);
  })
  .finally(() => {
    if (v.keep) console.error(`kept ${runDir}`);
    process.exit();
  });
