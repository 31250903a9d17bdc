// A generator result → the fields of the final JSON line (comparable across commits) and a
// one-line human summary.
import type { GeneratorResult } from './generator.ts';
import type { LoadSpec } from './workload.ts';

export type ResultLine = Record<string, string | number | boolean>;

const ms = (us: number): number => Math.round(us) / 1000;
const r2 = (x: number): number => (Number.isFinite(x) ? Math.round(x * 100) / 100 : -1);
const r3 = (x: number): number => (Number.isFinite(x) ? Math.round(x * 1000) / 1000 : -1);

export function resultLine(bench: string, system: string, protocol: string, spec: LoadSpec, r: GeneratorResult, extra: ResultLine = {}): ResultLine {
  const h = r.hist;
  return {
    bench,
    system,
    protocol,
    workload: spec.workload,
    dist: spec.dist,
    loop: spec.rate > 0 ? 'open' : 'closed',
    inflight: spec.inflight,
    rate: spec.rate,
    ops_per_s: Math.round(r.opsPerS),
    p50_ms: ms(h.percentile(50)),
    p90_ms: ms(h.percentile(90)),
    p99_ms: ms(h.percentile(99)),
    p999_ms: ms(h.percentile(99.9)),
    max_ms: ms(h.max),
    mean_ms: ms(h.mean),
    errors: r.errors,
    misses: r.misses,
    client_cpu: r2(r.clientCpu),
    server_cpu: r2(r.serverCpu),
    // The servers' CPU milliseconds and context switches per completed request (the write-path
    // issue's "CPU per write"); -1 when unknown.
    server_cpu_ms_per_op: r.opsPerS > 0 ? r3((r.serverCpu * 1000) / r.opsPerS) : -1,
    server_switches_per_op: r.opsPerS > 0 ? r2(r.serverSwitches / r.opsPerS) : -1,
    machine_busy: r2(r.machineBusy),
    // CPU used by neither the generator nor the servers: other people's jobs, the kernel's disk
    // work and idle systems. High values mark a noisy run.
    other_cpu: r2(r.machineBusy - r.clientCpu - r.serverCpu),
    keys: spec.keys,
    key_size: spec.keySize,
    value_size: spec.valueSize,
    duration_s: spec.durationS,
    ...(r.backlog > 0 ? { backlog: r.backlog } : {}),
    // Open loop: the generator's own delay in dispatching arrivals (counted in the latencies above).
    ...(spec.rate > 0 ? { generator_late_p50_ms: ms(r.lateP50Us), generator_late_p99_ms: ms(r.lateP99Us) } : {}),
    ...(r.lastError ? { last_error: r.lastError.slice(0, 200) } : {}),
    ...extra,
  };
}

export function humanLine(l: ResultLine): string {
  const f = (k: string): string => String(l[k] ?? '–');
  // redis-benchmark reports p95 where our generator reports p90 and p99.9.
  const shape = l.pipeline !== undefined ? `-c ${f('clients')} -P ${f('pipeline')}` : f('dist');
  const tail = l.p95_ms !== undefined ? `p95 ${f('p95_ms')} p99 ${f('p99_ms')}` : `p90 ${f('p90_ms')} p99 ${f('p99_ms')} p99.9 ${f('p999_ms')}`;
  return (
    `${f('system').padEnd(14)} ${f('workload').padEnd(5)} ${shape.padEnd(12)} ${String(l.ops_per_s).padStart(8)} ops/s  ` +
    `p50 ${f('p50_ms')} ${tail} max ${f('max_ms')} ms  ` +
    `cpu client ${f('client_cpu')} servers ${f('server_cpu')} machine ${f('machine_busy')}` +
    (Number(l.server_cpu_ms_per_op) >= 0 ? `  server ${f('server_cpu_ms_per_op')} ms cpu, ${f('server_switches_per_op')} switches per op` : '') +
    (l.generator_late_p99_ms !== undefined ? `  generator late p50 ${f('generator_late_p50_ms')} p99 ${f('generator_late_p99_ms')} ms` : '') +
    (Number(l.errors) > 0 ? `  errors ${f('errors')} (${f('last_error')})` : '') +
    (Number(l.misses) > 0 ? `  misses ${f('misses')}` : '')
  );
}
