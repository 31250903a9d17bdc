// Summarises a V8 .cpuprofile (node --cpu-prof): self time per function and per area of the code,
// so "where the time goes" fits in a table. Self time is the sum of the sample intervals whose
// top frame is the function.
import { relative } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileEntry {
  name: string;
  /** Self time, ms. */
  ms: number;
  /** Share of the busy (non-idle) time, %. */
  pct: number;
}

export interface ProfileSummary {
  wallMs: number;
  busyMs: number;
  functions: ProfileEntry[];
  areas: ProfileEntry[];
  /** For native functions near the top (no source of their own): the JS frames that called them. */
  callers: { name: string; from: ProfileEntry[] }[];
}

/** Which part of the system a frame belongs to. */
export function areaOf(url: string, fn: string, root: string): string {
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(program)') return 'V8/native (program)';
  if (fn === '(idle)') return 'idle';
  if (url === '') return fn.startsWith('(') ? fn : 'native built-ins';
  const m = /\/src\/([^/]+)\//.exec(url);
  if (m && !url.includes('node_modules')) return `src/${m[1]}`;
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1] === 'tsx' || nm[1] === 'esbuild' ? 'tsx loader' : `npm:${nm[1]}`;
  if (url.startsWith('node:')) {
    const mod = url.slice(5).split('/')[1] ?? url.slice(5);
    return `node:${/^(net|stream|streams|buffer|timers|events)/.test(mod) ? mod.replace(/_.*$/, '') : 'other'}`;
  }
  return relative(root, url.replace(/^file:\/\//, '')) || url;
}

/**
 * `window` (µs on the profile's clock, which is CLOCK_MONOTONIC like process.hrtime) keeps only
 * the samples inside it, e.g. the measured window without start-up and module loading.
 */
/** A frame's file, short: node:… as is, packages from their name, our files from the root. */
function shortPath(url: string, root: string): string {
  if (url.startsWith('node:')) return url;
  const nm = /node_modules\/(.*)$/.exec(url);
  if (nm) return nm[1]!;
  return relative(root, url.replace(/^file:\/\//, ''));
}

export function summarizeProfile(p: CpuProfile, root: string, top = 25, window?: [number, number]): ProfileSummary {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    t += dt;
    if (window && (t < window[0] || t > window[1])) continue;
    const id = p.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + dt / 1000);
  }
  const wallMs = window ? (Math.min(window[1], p.endTime) - Math.max(window[0], p.startTime)) / 1000 : (p.endTime - p.startTime) / 1000;
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  /** The nearest ancestor frame in our code or a package (who called a native function). */
  const jsCaller = (id: number): string => {
    for (let a = parent.get(id); a !== undefined; a = parent.get(a)) {
      const f = byId.get(a)!.callFrame;
      if (f.url && !f.url.startsWith('node:')) return `${f.functionName || '(anonymous)'} ${shortPath(f.url, root)}`;
    }
    return '(root)';
  };
  const nativeCallers = new Map<string, Map<string, number>>();
  const fns = new Map<string, number>();
  const areas = new Map<string, number>();
  let idle = 0;
  let total = 0;
  for (const [id, ms] of self) {
    const n = byId.get(id);
    if (!n) continue;
    const { functionName, url, lineNumber } = n.callFrame;
    total += ms;
    const area = areaOf(url, functionName, root);
    if (area === 'idle') {
      idle += ms;
      continue;
    }
    // tsx-compiled sources report line 0 for everything: only keep real line numbers.
    const file = url ? `${shortPath(url, root)}${lineNumber > 0 ? `:${lineNumber + 1}` : ''}` : '';
    const key = `${functionName || '(anonymous)'}${file ? ` ${file}` : ''}`;
    fns.set(key, (fns.get(key) ?? 0) + ms);
    if (!url && !functionName.startsWith('(')) {
      const m = nativeCallers.get(key) ?? new Map<string, number>();
      const c = jsCaller(id);
      m.set(c, (m.get(c) ?? 0) + ms);
      nativeCallers.set(key, m);
    }
    areas.set(area, (areas.get(area) ?? 0) + ms);
  }
  const busy = total - idle;
  const list = (m: Map<string, number>, n: number): ProfileEntry[] =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, ms]) => ({ name, ms: Math.round(ms), pct: Math.round((ms / busy) * 1000) / 10 }));
  const functions = list(fns, top);
  const callers = functions
    .filter((f) => nativeCallers.has(f.name))
    .slice(0, 3)
    .map((f) => ({ name: f.name, from: list(nativeCallers.get(f.name)!, 4) }));
  return { wallMs: Math.round(wallMs), busyMs: Math.round(busy), functions, areas: list(areas, 20), callers };
}

export function profileMarkdown(s: ProfileSummary, title: string): string {
  const rows = (es: ProfileEntry[]): string[] => es.map((e) => `| ${e.name.replace(/\|/g, '\\|')} | ${e.ms} | ${e.pct}% |`);
  return [
    `### ${title}`,
    '',
    `Busy ${s.busyMs} ms of ${s.wallMs} ms profiled (${Math.round((s.busyMs / s.wallMs) * 100)}% of one core).`,
    '',
    '| area (self time) | ms | % of busy |',
    '|---|---:|---:|',
    ...rows(s.areas),
    '',
    '| function (self time) | ms | % of busy |',
    '|---|---:|---:|',
    ...rows(s.functions),
    '',
    ...s.callers.flatMap((c) => [`Callers of ${c.name}: ${c.from.map((f) => `${f.name} (${f.ms} ms)`).join('; ')}.`, '']),
  ].join('\n');
}
