// Debian's redis-benchmark as a second, independent load generator (nobody here wrote it), run
// with the same flags against Redis and against this store's RESP door. A short run first warms
// up and sizes the measured run to about `seconds` (redis-benchmark counts requests, not time).
//
//   node --import tsx bench/redis-benchmark.ts --port 6379 --test set [--pipeline 16] [--system redis]
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { CpuWindow, reapedChildrenCpuSeconds } from './load/proc-stat.ts';
import type { ResultLine } from './load/summary.ts';
import { machine, printResult } from './machine.ts';

export interface RedisBenchmarkOptions {
  system: string;
  host: string;
  port: number;
  test: 'set' | 'get';
  clients: number;
  pipeline: number;
  dataSize: number;
  /** -r: random keys from this many (SET then GET hit the same key space). */
  keyspace: number;
  /** Target length of the measured run. */
  seconds: number;
  serverPids: number[];
  /** Known rate (from an earlier repetition) to size the run without a calibration pass. */
  expectRate?: number;
}

interface Csv {
  rps: number;
  avg: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

function parseCsv(out: string): Csv {
  const row = out
    .trim()
    .split('\n')
    .map((l) => l.split(',').map((c) => c.replace(/"/g, '')))
    .find((c) => c[0] === 'SET' || c[0] === 'GET');
  if (!row) throw new Error(`no result in redis-benchmark output: ${out.slice(0, 300)}`);
  const [, rps, avg, , p50, p95, p99, max] = row.map(Number);
  return { rps: rps!, avg: avg!, p50: p50!, p95: p95!, p99: p99!, max: max! };
}

function invoke(o: RedisBenchmarkOptions, requests: number, timeoutMs: number): Promise<{ csv: Csv; wallS: number; cpuS: number }> {
  const args = ['-h', o.host, '-p', String(o.port), '-c', String(o.clients), '-n', String(requests), '-d', String(o.dataSize), '-r', String(o.keyspace), '-P', String(o.pipeline), '-t', o.test, '--csv'];
  const cpu0 = reapedChildrenCpuSeconds();
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn('redis-benchmark', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`redis-benchmark ${args.join(' ')}: ${signal ?? `exit ${code}`} ${err.slice(0, 300)}`));
      try {
        // Children's CPU is credited to us once reaped, which 'exit' implies.
        resolve({ csv: parseCsv(out), wallS: (performance.now() - t0) / 1000, cpuS: reapedChildrenCpuSeconds() - cpu0 });
      } catch (e) {
        reject(e as Error);
      }
    });
  });
}

export async function runRedisBenchmark(o: RedisBenchmarkOptions): Promise<{ line: ResultLine; rate: number }> {
  let rate = o.expectRate;
  if (!rate) {
    const warm = await invoke(o, 5000 * o.pipeline, 60_000);
    rate = warm.csv.rps;
  }
  const requests = Math.max(1000, Math.round(rate * o.seconds));
  const cpu = new CpuWindow(o.serverPids);
  cpu.start();
  const r = await invoke(o, requests, Math.max(60_000, o.seconds * 10_000));
  const c = cpu.stop();
  const line: ResultLine = {
    bench: 'redis-benchmark',
    system: o.system,
    protocol: 'resp',
    workload: o.test.toUpperCase(),
    clients: o.clients,
    pipeline: o.pipeline,
    ops_per_s: Math.round(r.csv.rps),
    p50_ms: r.csv.p50,
    p95_ms: r.csv.p95,
    p99_ms: r.csv.p99,
    max_ms: r.csv.max,
    mean_ms: r.csv.avg,
    client_cpu: Math.round((r.cpuS / r.wallS) * 100) / 100,
    server_cpu: Math.round(c.pids * 100) / 100,
    server_cpu_ms_per_op: r.csv.rps > 0 ? Math.round((c.pids * 1e6) / r.csv.rps) / 1000 : -1,
    server_switches_per_op: r.csv.rps > 0 ? Math.round((c.switchesPerS * 100) / r.csv.rps) / 100 : -1,
    machine_busy: Math.round(c.machineBusy * 100) / 100,
    requests,
    value_size: o.dataSize,
    keys: o.keyspace,
  };
  return { line, rate: r.csv.rps };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values: v } = parseArgs({
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '6379' },
      test: { type: 'string', default: 'set' },
      clients: { type: 'string', default: '50' },
      pipeline: { type: 'string', default: '1' },
      'data-size': { type: 'string', default: '100' },
      keyspace: { type: 'string', default: '10000' },
      seconds: { type: 'string', default: '3' },
      system: { type: 'string', default: 'redis' },
      'server-pids': { type: 'string', default: '' },
    },
  });
  console.log(`# redis-benchmark via bench/redis-benchmark.ts ${process.argv.slice(2).join(' ')}`);
  console.log(`# ${machine()}`);
  const { line } = await runRedisBenchmark({
    system: v.system!,
    host: v.host!,
    port: Number(v.port),
    test: v.test === 'get' ? 'get' : 'set',
    clients: Number(v.clients),
    pipeline: Number(v.pipeline),
    dataSize: Number(v['data-size']),
    keyspace: Number(v.keyspace),
    seconds: Number(v.seconds),
    serverPids: v['server-pids']!.split(',').filter(Boolean).map(Number),
  });
  printResult(line);
}
