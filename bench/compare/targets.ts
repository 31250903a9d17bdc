// The targets as ratios. Each ratio is taken within one repetition (the two runs were
// minutes apart, under the same neighbours) and the median over repetitions is reported.
import type { ResultLine } from '../load/summary.ts';
import { median } from '../report/summarize.ts';
import type { TargetCheck } from '../report/table.ts';

function byRep(lines: ResultLine[], cell: string): Map<number, ResultLine> {
  return new Map(lines.filter((l) => l.cell === cell).map((l) => [Number(l.rep), l]));
}

function pairedRatio(lines: ResultLine[], num: string, den: string): { ratio: number; a: number; b: number; aP99: number; bP99: number } {
  const A = byRep(lines, num);
  const B = byRep(lines, den);
  const ratios: number[] = [];
  for (const [rep, a] of A) {
    const b = B.get(rep);
    if (b && Number(b.ops_per_s) > 0) ratios.push(Number(a.ops_per_s) / Number(b.ops_per_s));
  }
  const m = (M: Map<number, ResultLine>, k: string): number => median([...M.values()].map((l) => Number(l[k])));
  return { ratio: median(ratios), a: m(A, 'ops_per_s'), b: m(B, 'ops_per_s'), aP99: m(A, 'p99_ms'), bP99: m(B, 'p99_ms') };
}

/** Median of one field over a cell's repetitions. */
function medianOf(lines: ResultLine[], cell: string, field: string): number {
  return median(lines.filter((l) => l.cell === cell).map((l) => Number(l[field])).filter((x) => x >= 0));
}

/** A target that is a ceiling (at most `limit`): the ratio is limit ÷ measured, so ≥ 1 is met. */
function ceiling(name: string, goal: string, measured: number, limit: number, detail: string): TargetCheck {
  const ratio = measured > 0 ? limit / measured : NaN;
  return { name, goal, ratio, need: 1, met: measured <= limit, detail };
}

const k = (x: number): string => (Number.isFinite(x) ? (x >= 10_000 ? `${(x / 1000).toFixed(1)}k` : String(Math.round(x))) : '–');

export function computeTargets(lines: ResultLine[], shardGroups: number): TargetCheck[] {
  const out: TargetCheck[] = [];
  const w = pairedRatio(lines, 'load/kvs/write/uniform', 'load/etcd/write/uniform');
  const p99ok = w.aP99 <= w.bP99;
  out.push({
    name: 'durable writes vs etcd',
    goal: "≥ 5× etcd's puts/s, p99 no worse",
    ratio: w.ratio,
    need: 5,
    met: w.ratio >= 5 && p99ok,
    detail: `${k(w.a)} vs ${k(w.b)} ops/s; p99 ${w.aP99} vs ${w.bP99} ms${Number.isFinite(w.aP99) && !p99ok ? ' (p99 worse)' : ''}`,
  });
  const cpu64 = medianOf(lines, 'load/kvs/write/uniform', 'server_cpu_ms_per_op');
  out.push(ceiling('server CPU per write, 64 in flight', '≤ 0.2 ms', cpu64, 0.2, `${cpu64} ms (etcd ${medianOf(lines, 'load/etcd/write/uniform', 'server_cpu_ms_per_op')} ms)`));
  const lightP50 = medianOf(lines, 'light/kvs', 'p50_ms');
  out.push(ceiling('open loop at 1,000 writes/s: p50', '≤ 1.0 ms', lightP50, 1, `${lightP50} ms (etcd ${medianOf(lines, 'light/etcd', 'p50_ms')} ms; the generator's own delay, counted in both: p50 ${medianOf(lines, 'light/kvs', 'generator_late_p50_ms')} ms)`));
  const lightCpu = medianOf(lines, 'light/kvs', 'server_cpu_ms_per_op');
  const switches = medianOf(lines, 'light/kvs', 'server_switches_per_op');
  out.push(ceiling('server CPU per write at 1,000 writes/s', '≤ 0.2 ms', lightCpu, 0.2, `${lightCpu} ms, ${switches} context switches (etcd ${medianOf(lines, 'light/etcd', 'server_cpu_ms_per_op')} ms, ${medianOf(lines, 'light/etcd', 'server_switches_per_op')})`));
  const r = pairedRatio(lines, 'load/kvs/C/uniform', 'load/etcd/C/uniform');
  out.push({ name: 'linearizable reads vs etcd', goal: "≥ 5× etcd's linearizable gets/s", ratio: r.ratio, need: 5, met: r.ratio >= 5, detail: `${k(r.a)} vs ${k(r.b)} ops/s` });
  const s = pairedRatio(lines, 'rb/kvs-resp/set/P1', 'rb/redis-always/set/P1');
  out.push({ name: 'RESP SET vs Redis appendfsync always', goal: '≥ 0.5× (redis-benchmark -c 50 -t set)', ratio: s.ratio, need: 0.5, met: s.ratio >= 0.5, detail: `${k(s.a)} vs ${k(s.b)} ops/s` });
  const g = pairedRatio(lines, 'rb/kvs-resp/get/P1', 'rb/redis-none/get/P1');
  out.push({ name: 'RESP GET vs Redis, no persistence', goal: '≥ 0.5× (redis-benchmark -c 50 -t get)', ratio: g.ratio, need: 0.5, met: g.ratio >= 0.5, detail: `${k(g.a)} vs ${k(g.b)} ops/s` });
  for (const [cells, layout] of [['shards', 'a process per replica'], ['shards-3p', '3 processes']] as const) {
    const sh = pairedRatio(lines, `${cells}/kvs-${shardGroups}g`, `${cells}/kvs-1g`);
    if (!Number.isFinite(sh.ratio)) continue; // a build or run without that layout
    out.push({
      name: `${shardGroups} groups vs 1 group (${layout})`,
      goal: "aggregate ≥ one group's (same 2 cores)",
      ratio: sh.ratio,
      need: 1,
      met: sh.ratio >= 1,
      detail: `${k(sh.a)} vs ${k(sh.b)} writes/s, ${shardGroups * 64} in flight`,
    });
  }
  return out;
}
