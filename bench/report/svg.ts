// The picture: one row per result — throughput bars on the left, latency percentiles (p50 → p99.9
// on a line, p99 marked) on the right, both on log scales since Redis and etcd are 100× apart —
// and, below, p99 against achieved throughput for the open-loop sweeps. Plain SVG, no library.
import type { CellRow } from './summarize.ts';
import type { OpenLoopPoint } from './table.ts';

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf', '#7f7f7f'];

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Log-scale axis from lo to hi (powers of ten) onto [x0, x1]. */
function logScale(lo: number, hi: number, x0: number, x1: number): (v: number) => number {
  const a = Math.log10(lo);
  const b = Math.log10(hi);
  return (v) => x0 + ((Math.log10(Math.min(hi, Math.max(lo, v))) - a) / (b - a)) * (x1 - x0);
}

function decades(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let v = lo; v <= hi * 1.0001; v *= 10) out.push(v);
  return out;
}

const tickLabel = (v: number, unit: string): string => (v >= 1e6 ? `${v / 1e6}M` : v >= 1e3 ? `${v / 1e3}k` : `${v}`) + unit;

export function renderSvg(title: string, rows: CellRow[], open: OpenLoopPoint[]): string {
  const systems = [...new Set([...rows.map((r) => r.system), ...open.map((p) => p.system)])];
  const color = (s: string): string => PALETTE[systems.indexOf(s) % PALETTE.length]!;
  const rowH = 16;
  const labelW = 250;
  const panelW = 330;
  const gap = 60;
  const top = 50;
  const W = labelW + panelW * 2 + gap + 30;
  const tableH = rows.length * rowH;
  const openH = open.length > 0 ? 260 : 0;
  const H = top + tableH + 40 + openH + 20;
  const parts: string[] = [];
  const text = (x: number, y: number, s: string, attrs = ''): void => void parts.push(`<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${attrs}>${esc(s)}</text>`);
  const line = (x1: number, y1: number, x2: number, y2: number, attrs: string): void =>
    void parts.push(`<line x1="${x1.toFixed(1)}" y1="${y1.toFixed(1)}" x2="${x2.toFixed(1)}" y2="${y2.toFixed(1)}" ${attrs}/>`);

  text(10, 20, title, 'font-size="14" font-weight="bold"');
  // Throughput panel.
  const opsLo = 1000;
  const opsHi = 10 ** Math.ceil(Math.log10(Math.max(1e4, ...rows.map((r) => r.ops).filter(Number.isFinite))));
  const xo = logScale(opsLo, opsHi, labelW, labelW + panelW);
  text(labelW, top - 18, 'throughput, ops/s (log)', 'font-size="11" font-weight="bold"');
  for (const d of decades(opsLo, opsHi)) {
    line(xo(d), top - 4, xo(d), top + tableH, 'stroke="#ddd"');
    text(xo(d), top + tableH + 12, tickLabel(d, ''), 'font-size="9" text-anchor="middle"');
  }
  // Latency panel.
  const latLo = 0.01;
  const latHi = 1000;
  const lx0 = labelW + panelW + gap;
  const xl = logScale(latLo, latHi, lx0, lx0 + panelW);
  text(lx0, top - 18, 'latency ms (log): p50 ● p90 | p99 ◆ p99.9 |', 'font-size="11" font-weight="bold"');
  for (const d of decades(latLo, latHi)) {
    line(xl(d), top - 4, xl(d), top + tableH, 'stroke="#ddd"');
    text(xl(d), top + tableH + 12, tickLabel(d, ''), 'font-size="9" text-anchor="middle"');
  }
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    const mid = y + rowH / 2;
    const c = color(r.system);
    const gen = r.bench === 'redis-benchmark' ? 'rb ' : '';
    text(labelW - 6, mid + 4, `${gen}${r.system} · ${r.workload} ${r.dist}`, 'font-size="10" text-anchor="end"');
    if (Number.isFinite(r.ops) && r.ops > 0) {
      parts.push(`<rect x="${labelW}" y="${y + 2}" width="${(xo(r.ops) - labelW).toFixed(1)}" height="${rowH - 4}" fill="${c}" opacity="0.8"/>`);
      text(xo(r.ops) + 3, mid + 3, Math.round(r.ops).toLocaleString('en-US'), 'font-size="9"');
    }
    const hiP = Number.isFinite(r.p999) && r.p999 > 0 ? r.p999 : r.p99;
    if (Number.isFinite(r.p50) && r.p50 > 0) {
      line(xl(r.p50), mid, xl(hiP), mid, `stroke="${c}" stroke-width="2"`);
      parts.push(`<circle cx="${xl(r.p50).toFixed(1)}" cy="${mid}" r="3.5" fill="${c}"/>`);
      if (Number.isFinite(r.p90) && r.p90 > 0) line(xl(r.p90), mid - 4, xl(r.p90), mid + 4, `stroke="${c}" stroke-width="2"`);
      const d = xl(r.p99);
      parts.push(`<path d="M${(d - 4).toFixed(1)} ${mid} L${d.toFixed(1)} ${mid - 4} L${(d + 4).toFixed(1)} ${mid} L${d.toFixed(1)} ${mid + 4} Z" fill="${c}"/>`);
      line(xl(hiP), mid - 5, xl(hiP), mid + 5, `stroke="${c}" stroke-width="1.5"`);
    }
  });

  if (open.length > 0) {
    // Open loop: p99 (solid) and p50 (dashed) vs achieved ops/s, one line per system.
    const oy0 = top + tableH + 50;
    const oh = openH - 60;
    const ox0 = labelW;
    const ow = panelW * 2 + gap;
    const aHi = 10 ** Math.ceil(Math.log10(Math.max(...open.map((p) => p.achieved))));
    const aLo = Math.min(aHi / 100, 10 ** Math.floor(Math.log10(Math.min(...open.map((p) => p.achieved).filter((x) => x > 0)))));
    const xa = logScale(aLo, aHi, ox0, ox0 + ow);
    const yl = (v: number): number => oy0 + oh - (logScale(0.1, 1000, 0, oh)(v));
    text(ox0, oy0 - 10, 'open loop, write-only: p99 (solid) and p50 (dashed) ms vs achieved ops/s (log-log)', 'font-size="11" font-weight="bold"');
    for (const d of decades(aLo, aHi)) {
      line(xa(d), oy0, xa(d), oy0 + oh, 'stroke="#ddd"');
      text(xa(d), oy0 + oh + 12, tickLabel(d, ''), 'font-size="9" text-anchor="middle"');
    }
    for (const d of decades(0.1, 1000)) {
      line(ox0, yl(d), ox0 + ow, yl(d), 'stroke="#eee"');
      text(ox0 - 4, yl(d) + 3, `${d} ms`, 'font-size="9" text-anchor="end"');
    }
    for (const s of [...new Set(open.map((p) => p.system))]) {
      const pts = open.filter((p) => p.system === s).sort((a, b) => a.achieved - b.achieved);
      const path = (k: 'p50' | 'p99'): string => pts.map((p, i) => `${i ? 'L' : 'M'}${xa(p.achieved).toFixed(1)} ${yl(Math.max(0.1, p[k])).toFixed(1)}`).join(' ');
      parts.push(`<path d="${path('p99')}" fill="none" stroke="${color(s)}" stroke-width="2"/>`);
      parts.push(`<path d="${path('p50')}" fill="none" stroke="${color(s)}" stroke-width="1.5" stroke-dasharray="4 3"/>`);
      for (const p of pts) parts.push(`<circle cx="${xa(p.achieved).toFixed(1)}" cy="${yl(Math.max(0.1, p.p99)).toFixed(1)}" r="3" fill="${color(s)}"/>`);
      const last = pts.at(-1)!;
      text(xa(last.achieved) + 6, yl(Math.max(0.1, last.p99)) + 3, s, `font-size="10" fill="${color(s)}"`);
    }
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}
