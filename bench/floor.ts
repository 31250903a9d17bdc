// The floor of a durable 3-replica write on this machine, and this store beside it (make
// bench-floor, docs/benchmarks.md). The floor chains (bench/floor/) do only what such a write
// cannot skip — the leader forwards each batch to both followers before its own write + fdatasync,
// answers once its flush and one follower's ack cover a request — in C (flusher threads, or one
// thread inline) and in Node (fdatasync on the thread pool, or on the event loop). They are lower
// bounds, not competitors: the store's ratio to them says how much of its cost is its own.
//
// Alternating rounds of every implementation × workload (open loop 1,000/s Poisson, closed loop 64
// in flight; 100-byte values), each run after waiting (bounded) for the machine to be quiet.
// Medians over rounds, with min–max. Data files and directories in a temporary directory under
// --dir (default os.tmpdir(); same disk as the store's data is the point), removed at the end.
//
//   node --import tsx bench/floor.ts [--rounds 3] [--dir DIR] [--open-seconds 10] [--closed-seconds 5]
import { execFile, execFileSync } from 'node:child_process';
import { closeSync, fsyncSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { machine, printResult } from './machine.ts';
import { start, stopAll, type Managed } from './systems/procs.ts';
import { startKvs } from './systems/kvs.ts';

const REPO = resolve(fileURLToPath(import.meta.url), '../..');
const FLOOR = join(REPO, 'bench/floor');
const DATA_FILE_BYTES = 64 << 20;
const QUIET_BUSY = 0.1; // of all cores
const run = promisify(execFile);

type Impl = 'C inline' | 'C threads' | 'Node async' | 'Node sync' | 'kvs';
const IMPLS: Impl[] = ['C inline', 'C threads', 'Node async', 'Node sync', 'kvs'];

interface Workload {
  name: string;
  loop: 'open' | 'closed';
  load: number;
  warmupS: number;
  measureS: number;
}

interface Result {
  ops_per_s: number;
  p50_ms: number;
  p99_ms: number;
  server_cpu_ms_per_op: number;
  server_switches_per_op: number;
  other_cpu: number;
}
const METRICS = ['ops_per_s', 'p50_ms', 'p99_ms', 'server_cpu_ms_per_op', 'server_switches_per_op', 'other_cpu'] as const;

/** Compiles replica.c and client.c into `dir` (warnings are errors: the sources stay clean). */
export function compileFloor(dir: string): { replica: string; client: string } {
  const out = { replica: join(dir, 'replica'), client: join(dir, 'client') };
  for (const [name, libs] of [['replica', ['-lpthread']], ['client', ['-lm']]] as const) {
    execFileSync('gcc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', out[name], join(FLOOR, `${name}.c`), ...libs], { stdio: ['ignore', 'inherit', 'inherit'] });
  }
  return out;
}

/** Three files of zeros, flushed: the chains then overwrite allocated blocks. */
export function preZero(dir: string, bytes = DATA_FILE_BYTES): string[] {
  const zeros = Buffer.alloc(1 << 20);
  return [0, 1, 2].map((i) => {
    const path = join(dir, `r${i}`);
    const fd = openSync(path, 'w');
    for (let off = 0; off < bytes; off += zeros.length) writeSync(fd, zeros, 0, zeros.length, off);
    fsyncSync(fd);
    closeSync(fd);
    return path;
  });
}

/** The command line of each replica of a floor chain (leader last). */
export function floorCommands(impl: Exclude<Impl, 'kvs'>, bin: string, files: string[], port: number): string[][] {
  const mode = { 'C inline': 'inline', 'C threads': 'threads', 'Node async': 'async', 'Node sync': 'sync' }[impl];
  const cmd = impl.startsWith('C') ? [bin] : [process.execPath, '--import', 'tsx', join(FLOOR, 'replica.ts')];
  return [
    [...cmd, 'follower', mode, files[1]!, String(port + 1)],
    [...cmd, 'follower', mode, files[2]!, String(port + 2)],
    [...cmd, 'leader', mode, files[0]!, String(port), String(port + 1), String(port + 2)],
  ];
}

/** Starts a floor chain on ports port..port+2, loads it with client.c, stops it; the client's JSON line. */
export async function runFloor(impl: Exclude<Impl, 'kvs'>, bins: { replica: string; client: string }, files: string[], logDir: string, port: number, w: Workload): Promise<Record<string, number | string>> {
  const procs: Managed[] = floorCommands(impl, bins.replica, files, port).map((argv, i) =>
    start(`floor-${i}`, argv[0]!, argv.slice(1), { log: join(logDir, `floor-${port}-${i}.log`), cwd: REPO }),
  );
  try {
    const { stdout } = await run(bins.client, [String(port), w.loop, String(w.load), String(w.warmupS), String(w.measureS), ...procs.map((p) => String(p.pid))], {
      timeout: (w.warmupS + w.measureS + 60) * 1000,
    });
    return JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, number | string>;
  } catch (e) {
    const logs = procs.map((p) => readFileSync(p.log, 'utf8').trim()).filter(Boolean).join('\n');
    throw new Error(`${impl} ${w.name}: ${e instanceof Error ? e.message : String(e)}${logs ? `\n${logs}` : ''}`);
  } finally {
    await Promise.all(procs.map((p) => p.stop(2000)));
  }
}

/** A fresh 3-replica group of this store, loaded with `kvs bench`; its JSON line. */
async function runKvs(dir: string, basePort: number, w: Workload): Promise<Record<string, number | string>> {
  const sys = await startKvs({ dir, basePort });
  try {
    const endpoints = sys.groups[0]!.replicas.map((r) => r.endpoints.native!).join(',');
    const bench = (load: string[], warmupS: number, measureS: number): Promise<{ stdout: string }> =>
      run(process.execPath, [join(REPO, 'bin/kvs.js'), 'bench', '--endpoints', endpoints, '--server-pids', sys.pids().join(','), '--workload', 'write', '--value-size', '100', ...load, '--warmup', String(warmupS), '--duration', String(measureS)], {
        timeout: (warmupS + measureS + 120) * 1000,
        cwd: REPO,
      });
    // Fresh servers run cold (JIT, LMDB maps): one unrecorded closed-loop run first, as bench-compare does.
    await bench(['--inflight', '64'], 0, 2);
    const { stdout } = await bench(w.loop === 'open' ? ['--rate', String(w.load), '--inflight', '10000'] : ['--inflight', String(w.load)], w.warmupS, w.measureS);
    return JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, number | string>;
  } finally {
    await sys.stop();
  }
}

/** Busy share of all cores over one second, from /proc/stat. */
async function busyShare(): Promise<number> {
  const sample = (): number[] => readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const a = sample();
  await new Promise((r) => setTimeout(r, 1000));
  const d = sample().map((x, i) => x - a[i]!);
  const idle = d[3]! + d[4]!; // idle, iowait
  const total = d.slice(0, 8).reduce((s, x) => s + x, 0);
  return total > 0 ? 1 - idle / total : 0;
}

/** Waits up to `limitS` seconds for the machine to be quiet; says how it went. */
async function waitQuiet(limitS: number): Promise<string> {
  const t0 = Date.now();
  let busy = 1;
  while ((Date.now() - t0) / 1000 < limitS) {
    busy = await busyShare();
    if (busy < QUIET_BUSY) return `quiet after ${Math.round((Date.now() - t0) / 1000)} s (${Math.round(busy * 100)}% busy)`;
  }
  return `NOT quiet after ${limitS} s (${Math.round(busy * 100)}% busy)`;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function fmt(x: number): string {
  if (x >= 100) return Math.round(x).toLocaleString('en-US');
  return x >= 10 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toFixed(3);
}

function cell(xs: number[]): string {
  return xs.length > 1 ? `${fmt(median(xs))} (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})` : fmt(xs[0]!);
}

async function main(): Promise<void> {
  const { values: v } = parseArgs({
    options: {
      rounds: { type: 'string', default: '3' },
      dir: { type: 'string', default: tmpdir() },
      'open-seconds': { type: 'string', default: '10' },
      'closed-seconds': { type: 'string', default: '5' },
      'quiet-wait': { type: 'string', default: '20' },
    },
  });
  const rounds = Number(v.rounds);
  const workloads: Workload[] = [
    { name: 'open 1,000/s', loop: 'open', load: 1000, warmupS: 2, measureS: Number(v['open-seconds']) },
    { name: 'closed 64', loop: 'closed', load: 64, warmupS: 1, measureS: Number(v['closed-seconds']) },
  ];
  console.log(`# node --import tsx bench/floor.ts ${process.argv.slice(2).join(' ')}`.trimEnd());
  console.log(`# ${machine()}`);
  const work = mkdtempSync(join(v.dir, 'kvs-floor-'));
  const binDir = mkdtempSync(join(tmpdir(), 'kvs-floor-bin-'));
  console.log(`# data in ${work}; ${rounds} round(s); open loop ${workloads[0]!.measureS} s, closed ${workloads[1]!.measureS} s measured`);
  const results = new Map<string, Result[]>();
  try {
    const bins = compileFloor(binDir);
    const files = preZero(work);
    let n = 0;
    for (let round = 1; round <= rounds; round++) {
      for (const w of workloads) {
        for (const impl of IMPLS) {
          n++;
          const quiet = await waitQuiet(Number(v['quiet-wait']));
          // Fresh ports each run (no TIME_WAIT leftovers): chains on 23300–23344, the store on 23351–23353 (+100, +200 for its doors).
          const line = impl === 'kvs' ? await runKvs(join(work, `kvs-${n}`), 23350, w) : await runFloor(impl, bins, files, work, 23300 + (n % 15) * 3, w);
          if (impl === 'kvs') rmSync(join(work, `kvs-${n}`), { recursive: true, force: true });
          const r = Object.fromEntries(METRICS.map((k) => [k, Number(line[k])])) as unknown as Result;
          const key = `${impl}\t${w.name}`;
          results.set(key, [...(results.get(key) ?? []), r]);
          console.log(
            `# round ${round} ${w.name.padEnd(12)} ${impl.padEnd(10)} ${quiet}; ${fmt(r.ops_per_s)} req/s, p50 ${fmt(r.p50_ms)} ms, ` +
              `${fmt(r.server_cpu_ms_per_op)} ms CPU/req, other load ${r.other_cpu.toFixed(2)} cores`,
          );
        }
      }
    }
  } finally {
    await stopAll(2000);
    rmSync(work, { recursive: true, force: true });
    rmSync(binDir, { recursive: true, force: true });
  }

  const header = ['implementation', 'workload', 'req/s', 'p50 ms', 'p99 ms', 'server CPU ms/req', 'switches/req', 'other load (cores)'];
  const rows = [...results].map(([key, rs]) => [...key.split('\t'), ...METRICS.map((m) => cell(rs.map((r) => r[m])))]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  console.log(`\nMedians over ${rounds} round(s), (min–max). Server CPU and switches: the 3 replica processes only.`);
  for (const r of [header, ...rows]) console.log(r.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));

  console.log('\nThis store against each floor (ratio of medians; 1.0x would be the floor itself):');
  for (const w of workloads) {
    const kvs = results.get(`kvs\t${w.name}`)!;
    for (const impl of IMPLS.filter((i) => i !== 'kvs')) {
      const floor = results.get(`${impl}\t${w.name}`)!;
      const ratio = (m: keyof Result): number => median(kvs.map((r) => r[m])) / median(floor.map((r) => r[m]));
      console.log(`  ${w.name.padEnd(12)} kvs / ${impl.padEnd(10)}  CPU per request ${ratio('server_cpu_ms_per_op').toFixed(1)}x, p50 ${ratio('p50_ms').toFixed(1)}x`);
    }
  }
  const open = results.get(`kvs\t${workloads[0]!.name}`)!;
  console.log(
    `\nWrite-path targets at 1,000 writes/s: p50 <= 1 ms (kvs: ${fmt(median(open.map((r) => r.p50_ms)))}), ` +
      `<= 0.2 ms server CPU per write (kvs: ${fmt(median(open.map((r) => r.server_cpu_ms_per_op)))}).`,
  );
  console.log(
    'Generators differ: the floor chains are loaded by bench/floor/client.c (one connection, a u64 id and a 100-byte value per request), ' +
      'this store by `kvs bench` (native protocol, 16-byte keys over 10,000, 100-byte values, client sessions); same arrival shapes.',
  );
  for (const [key, rs] of results) {
    const [impl, workload] = key.split('\t');
    printResult({ bench: 'floor', system: impl!, workload: workload!, rounds: rs.length, ...Object.fromEntries(METRICS.map((m) => [m, median(rs.map((r) => r[m]))])) });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((e: unknown) => {
    console.error(`bench-floor: ${e instanceof Error ? e.message : String(e)}`);
    void stopAll(2000).finally(() => process.exit(1));
  });
}
