// Repetitions of one cell → one row: medians (robust to one disturbed repetition on a shared
// machine) and the spread of throughput, which is the noise the report shows.
import type { ResultLine } from '../load/summary.ts';

export interface CellRow {
  cell: string;
  bench: string;
  /** Which generator, with its load shape. */
  generator: string;
  system: string;
  workload: string;
  dist: string;
  reps: number;
  ops: number;
  opsMin: number;
  opsMax: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  clientCpu: number;
  serverCpu: number;
  otherCpu: number;
  errors: number;
}

export function median(xs: number[]): number {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}

const n = (l: ResultLine, k: string): number => (typeof l[k] === 'number' ? (l[k] as number) : NaN);

export function summarize(cell: string, lines: ResultLine[]): CellRow {
  const first = lines[0]!;
  const col = (k: string): number[] => lines.map((l) => n(l, k));
  const ops = col('ops_per_s');
  return {
    cell,
    bench: String(first.bench),
    generator:
      first.bench === 'redis-benchmark'
        ? `redis-benchmark -c ${first.clients}`
        : `kvs bench, ${first.loop === 'open' ? `${first.rate}/s offered` : `${first.inflight} in flight`}`,
    system: String(first.system),
    workload: String(first.workload),
    dist: String(first.dist ?? (first.pipeline !== undefined ? `-P ${first.pipeline}` : '')),
    reps: lines.length,
    ops: median(ops),
    opsMin: Math.min(...ops),
    opsMax: Math.max(...ops),
    p50: median(col('p50_ms')),
    p90: median(col('p90_ms')),
    p99: median(col('p99_ms')),
    p999: median(col('p999_ms')),
    max: Math.max(...col('max_ms').filter(Number.isFinite)),
    clientCpu: median(col('client_cpu')),
    serverCpu: median(col('server_cpu')),
    otherCpu: median(lines.map((l) => n(l, 'machine_busy') - n(l, 'client_cpu') - n(l, 'server_cpu'))),
    errors: col('errors').reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0),
  };
}

/** Throughput spread of a row as ± % around the median (the run's noise, per cell). */
export function spreadPct(r: CellRow): number {
  return r.ops > 0 ? Math.round(((r.opsMax - r.opsMin) / 2 / r.ops) * 100) : 0;
}
