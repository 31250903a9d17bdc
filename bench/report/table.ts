// The Markdown report: the results table, the targets with their measured ratios, and the noise.
import { spreadPct, type CellRow } from './summarize.ts';

export interface TargetCheck {
  name: string;
  goal: string;
  /** Median over repetitions of the per-repetition ratio (pairs measured minutes apart). */
  ratio: number;
  need: number;
  met: boolean;
  detail: string;
}

export interface OpenLoopPoint {
  system: string;
  offered: number;
  achieved: number;
  p50: number;
  p99: number;
  /** Arrivals still waiting for a slot at the end of the window: the offered rate was not sustained. */
  backlog: number;
}

export interface ReportMeta {
  date: string;
  commit: string;
  machine: string;
  command: string;
  minutes: number;
  notes: string[];
}

const fmtOps = (x: number): string => (!Number.isFinite(x) ? '–' : x >= 100_000 ? `${Math.round(x / 1000)}k` : x >= 10_000 ? `${(x / 1000).toFixed(1)}k` : String(Math.round(x)));
const fmtMs = (x: number): string => (!Number.isFinite(x) || x < 0 ? '–' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toFixed(3));
const fmtCpu = (x: number): string => (Number.isFinite(x) && x >= 0 ? x.toFixed(2) : '–');

export function resultsTable(rows: CellRow[]): string {
  const out = [
    '| generator | system | workload | keys / flags | ops/s (median) | ± | p50 ms | p90 | p99 | p99.9 | max | CPU client | CPU servers | CPU other | errors |',
    '|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    out.push(
      `| ${r.generator} | ${r.system} | ${r.workload} | ${r.dist} | ${fmtOps(r.ops)} | ${spreadPct(r)}% | ${fmtMs(r.p50)} | ${fmtMs(r.p90)} | ${fmtMs(r.p99)} | ${fmtMs(r.p999)} | ${fmtMs(r.max)} | ${fmtCpu(r.clientCpu)} | ${fmtCpu(r.serverCpu)} | ${fmtCpu(r.otherCpu)} | ${r.errors} |`,
    );
  }
  return out.join('\n');
}

export function targetsTable(targets: TargetCheck[]): string {
  const out = ['| target | goal | measured | verdict |', '|---|---|---:|---|'];
  for (const t of targets) {
    const verdict = !Number.isFinite(t.ratio) ? 'not measured' : t.met ? 'met' : `missed (${(t.ratio / t.need).toFixed(2)}× of the goal)`;
    out.push(`| ${t.name} | ${t.goal} | ${Number.isFinite(t.ratio) ? `${t.ratio.toFixed(2)}×` : '–'} — ${t.detail} | ${verdict} |`);
  }
  return out.join('\n');
}

export function openLoopTable(points: OpenLoopPoint[]): string {
  const out = ['| system | offered ops/s | achieved ops/s | p50 ms | p99 ms | |', '|---|---:|---:|---:|---:|---|'];
  for (const p of points) {
    const note = p.backlog > 0 ? `saturated: ${p.backlog} arrivals still queued at the end` : '';
    out.push(`| ${p.system} | ${fmtOps(p.offered)} | ${fmtOps(p.achieved)} | ${fmtMs(p.p50)} | ${fmtMs(p.p99)} | ${note} |`);
  }
  return out.join('\n');
}

export function markdownReport(meta: ReportMeta, rows: CellRow[], targets: TargetCheck[], open: OpenLoopPoint[], svgName: string): string {
  return [
    `# Benchmarks side by side — ${meta.date}`,
    '',
    `- machine: ${meta.machine}`,
    `- commit: ${meta.commit}`,
    `- command: \`${meta.command}\` (${meta.minutes.toFixed(1)} min)`,
    ...meta.notes.map((n) => `- ${n}`),
    '',
    `![throughput and latency per system](${svgName})`,
    '',
    '## Targets',
    '',
    targetsTable(targets),
    '',
    '## Results',
    '',
    'Medians over interleaved repetitions; ± is half the min–max spread of ops/s. CPU in cores (of 2) over',
    'the measured window: the generator, the servers, and everything else on the machine.',
    '',
    resultsTable(rows),
    '',
    ...(open.length > 0 ? ['## Latency vs offered load (open loop, write-only)', '', openLoopTable(open), ''] : []),
  ].join('\n');
}
