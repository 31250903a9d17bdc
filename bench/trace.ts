// What wire tracing costs a local 3-replica cluster: write throughput with tracing off, with the
// in-process tap (`kvs server --trace`, KVS_TRACE_CAPTURE=tap), with eBPF from a separate
// `kvs trace` process, and with eBPF inside each replica (`kvs server --trace` as root). One cluster
// per mode, all started up front (on disjoint ports: each tracer sees only its own cluster), then
// the load visits them in turn for short windows, many rounds, in a rotating order — so a drifting
// background load on a shared machine hits every mode alike. Ratios are taken per round against
// that round's "off" window; the medians are reported. Besides throughput, the CPU time the
// cluster's processes (and `kvs trace`) spend per write, which contention disturbs much less. Not a test.
//   node --import tsx bench/trace.ts [--rounds 10] [--seconds 2] [--inflight 64] [--value 100]
//        [--modes off,tap,ebpf,ebpf-server] [--snap 4096]
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { KvsClient } from '../src/client/client.ts';
import { ebpfUnavailableReason } from '../src/trace/capture.ts';
import { TestCluster, sleep } from '../test/server/cluster.ts';
import { machine, printResult } from './machine.ts';

const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? (process.argv[i + 1] ?? dflt) : dflt;
};
const ROUNDS = Number(arg('rounds', '10'));
const SECONDS = Number(arg('seconds', '2'));
const INFLIGHT = Number(arg('inflight', '64'));
const VALUE = Number(arg('value', '100'));
const SNAP = Number(arg('snap', '4096'));
const BASE = 26600;
const BIN = resolve(import.meta.dirname, '../bin/kvs.js');

type Mode = 'off' | 'tap' | 'ebpf' | 'ebpf-server';
const ebpfReason = ebpfUnavailableReason();
const wanted = arg('modes', 'off,tap,ebpf,ebpf-server').split(',') as Mode[];
const MODES = wanted.filter((m) => !m.startsWith('ebpf') || ebpfReason === undefined);

console.log(`# trace overhead: write throughput of a local 3-replica cluster, ${INFLIGHT} puts in flight, ${VALUE}-byte values`);
console.log(`# ${machine()}`);
console.log(
  `# command: node --import tsx bench/trace.ts --rounds ${ROUNDS} --seconds ${SECONDS} --inflight ${INFLIGHT} --value ${VALUE} --modes ${wanted.join(',')} --snap ${SNAP}`,
);
console.log(`# load average ${readFileSync('/proc/loadavg', 'utf8').trim()}`);
if (ebpfReason !== undefined) console.log(`# eBPF modes skipped: ${ebpfReason}`);

interface Window {
  mode: Mode;
  round: number;
  opsPerSec: number;
  /** CPU time of the cluster's processes (and of `kvs trace` for mode ebpf) per write, µs. */
  cpuUsPerWrite: number;
  /** The replicas' share of it. */
  replicaCpuUsPerWrite: number;
}

/** utime + stime of a process, in seconds. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ
}

interface Target {
  mode: Mode;
  cluster: TestCluster;
  client: KvsClient;
  tracer?: ChildProcess;
  outFile?: string;
}

/** A cluster for one mode, on ports of its own; for 'ebpf', `kvs trace` attached to those ports first. */
async function startTarget(mode: Mode, index: number, dir: string): Promise<Target> {
  const base = BASE + index * 10;
  let tracer: ChildProcess | undefined;
  let outFile: string | undefined;
  if (mode === 'ebpf') {
    outFile = join(dir, 'trace.out');
    const fd = openSync(outFile, 'w');
    const replicas = [1, 2, 3].map((i) => `${i}=127.0.0.1:${base + i}`).join(',');
    tracer = spawn(process.execPath, [BIN, 'trace', '--replicas', replicas, '--format', 'json', '--snap', String(SNAP), '--summary-every', '0'], {
      stdio: ['ignore', fd, 'pipe'],
    });
    closeSync(fd);
    await new Promise<void>((ok, fail) => {
      let err = '';
      tracer!.stderr!.on('data', (b: Buffer) => {
        err += b.toString();
        if (err.includes('trace: eBPF on')) ok();
      });
      tracer!.on('exit', () => fail(new Error(`kvs trace exited: ${err}`)));
    });
  }
  const args = mode === 'tap' || mode === 'ebpf-server' ? ['--trace', '--trace-format', 'json'] : [];
  const env = mode === 'tap' ? { ...process.env, KVS_TRACE_CAPTURE: 'tap' } : process.env;
  const cluster = await TestCluster.start({ basePort: base, args, env });
  const client = new KvsClient({ endpoints: cluster.endpoints(), timeoutMs: 30_000, maxInFlightWrites: INFLIGHT, poolSize: 2 });
  return { mode, cluster, client, tracer, outFile };
}

/** CPU seconds used so far by the target's replicas, and by its tracer process. */
function targetCpu(t: Target): { replicas: number; tracer: number } {
  const replicas = t.cluster.ids.reduce((sum, id) => {
    const pid = t.cluster.pid(id);
    return sum + (pid === undefined ? 0 : cpuSeconds(pid));
  }, 0);
  return { replicas, tracer: t.tracer?.pid === undefined ? 0 : cpuSeconds(t.tracer.pid) };
}

/** Writes at full speed for `seconds` (after a short ramp): writes per second, CPU µs per write. */
async function load(t: Target, seconds: number): Promise<Omit<Window, 'mode' | 'round'>> {
  const value = Buffer.alloc(VALUE, 120);
  let writes = 0;
  let running = true;
  const workers = Array.from({ length: INFLIGHT }, async (_, w) => {
    for (let i = w; running; i += INFLIGHT) {
      await t.client.put(`bench-${i % 50_000}`, value);
      writes++;
    }
  });
  await sleep(300);
  const w0 = writes;
  const c0 = targetCpu(t);
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const n = writes - w0;
  const rate = (n * 1000) / (performance.now() - t0);
  const c1 = targetCpu(t);
  const perWrite = (s: number): number => (s * 1e6) / Math.max(1, n);
  running = false;
  await Promise.all(workers);
  return { opsPerSec: rate, cpuUsPerWrite: perWrite(c1.replicas + c1.tracer - c0.replicas - c0.tracer), replicaCpuUsPerWrite: perWrite(c1.replicas - c0.replicas) };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const dir = mkdtempSync(join(tmpdir(), 'kvs-bench-trace-'));
const targets: Target[] = [];
const windows: Window[] = [];
let tracerSummary: Record<string, unknown> | undefined;
let tracerCpu: number | undefined;
try {
  for (const [i, mode] of MODES.entries()) targets.push(await startTarget(mode, i, dir));
  for (const t of targets) await load(t, 1); // warm-up
  for (let round = 0; round < ROUNDS; round++) {
    // Rotate the order so no mode always follows the same one.
    for (let k = 0; k < targets.length; k++) {
      const t = targets[(k + round) % targets.length]!;
      windows.push({ mode: t.mode, round, ...(await load(t, SECONDS)) });
    }
    const line = MODES.map((m) => {
      const w = windows.find((x) => x.round === round && x.mode === m)!;
      return `${m} ${w.opsPerSec.toFixed(0)} (${w.cpuUsPerWrite.toFixed(0)} µs)`;
    }).join(', ');
    console.log(`# round ${round + 1}/${ROUNDS}: ${line} writes/s (CPU per write)`);
  }
  const ebpf = targets.find((t) => t.tracer !== undefined);
  if (ebpf?.tracer?.pid !== undefined) {
    tracerCpu = cpuSeconds(ebpf.tracer.pid);
    const exited = new Promise((r) => ebpf.tracer!.once('exit', r));
    ebpf.tracer.kill('SIGINT');
    await exited;
    tracerSummary = JSON.parse(readFileSync(ebpf.outFile!, 'utf8').trimEnd().split('\n').at(-1) ?? '{}') as Record<string, unknown>;
  }
} finally {
  for (const t of targets) {
    t.client.close();
    await t.cluster.stop();
    if (t.tracer !== undefined && t.tracer.exitCode === null) t.tracer.kill('SIGKILL');
  }
  rmSync(dir, { recursive: true, force: true });
}

for (const mode of MODES) {
  const mine = windows.filter((w) => w.mode === mode);
  const ratios = mine.map((w) => w.opsPerSec / windows.find((o) => o.mode === 'off' && o.round === w.round)!.opsPerSec);
  const fields: Record<string, string | number> = {
    bench: 'trace',
    mode,
    rounds: mine.length,
    seconds: SECONDS,
    inflight: INFLIGHT,
    valueBytes: VALUE,
    writesPerSecMedian: Math.round(median(mine.map((w) => w.opsPerSec))),
  };
  if (MODES.includes('off')) {
    fields.ratioToOffMedian = Number(median(ratios).toFixed(3));
    fields.costPercent = Number(((1 - median(ratios)) * 100).toFixed(1));
    fields.ratioMin = Number(Math.min(...ratios).toFixed(3));
    fields.ratioMax = Number(Math.max(...ratios).toFixed(3));
    const cpuRatios = mine.map((w) => w.cpuUsPerWrite / windows.find((o) => o.mode === 'off' && o.round === w.round)!.cpuUsPerWrite);
    fields.cpuUsPerWriteMedian = Number(median(mine.map((w) => w.cpuUsPerWrite)).toFixed(1));
    fields.cpuPerWriteRatioMedian = Number(median(cpuRatios).toFixed(3));
    const replicaRatios = mine.map((w) => w.replicaCpuUsPerWrite / windows.find((o) => o.mode === 'off' && o.round === w.round)!.replicaCpuUsPerWrite);
    fields.replicaCpuPerWriteRatioMedian = Number(median(replicaRatios).toFixed(3));
  }
  if (mode === 'ebpf' && tracerSummary !== undefined) {
    fields.snap = SNAP;
    fields.tracerCpuSeconds = Number((tracerCpu ?? 0).toFixed(2));
    for (const k of ['frames', 'lines', 'partial', 'unseen', 'undecodable', 'resyncs', 'lostBytes', 'cutBytes', 'drops']) fields[k] = Number(tracerSummary[k]);
  }
  printResult(fields);
}
