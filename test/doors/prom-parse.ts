// A strict reader of the Prometheus text exposition format (0.0.4), enough to prove /metrics
// parses: every sample line well-formed, every metric's TYPE declared before its samples and only
// once, label syntax and escapes valid, histograms with increasing `le`, cumulative buckets, a
// +Inf bucket equal to _count, and a _sum.
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  types: Map<string, string>;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf('=', i);
    if (eq < 0) throw new Error(`bad labels in: ${line}`);
    const name = text.slice(i, eq);
    if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(name)) throw new Error(`bad label name "${name}" in: ${line}`);
    if (text[eq + 1] !== '"') throw new Error(`unquoted label value in: ${line}`);
    let j = eq + 2;
    let value = '';
    for (; j < text.length && text[j] !== '"'; j++) {
      if (text[j] === '\\') {
        const e = text[++j];
        if (e === 'n') value += '\n';
        else if (e === '\\' || e === '"') value += e;
        else throw new Error(`bad escape in: ${line}`);
      } else value += text[j];
    }
    if (j >= text.length) throw new Error(`unterminated label value in: ${line}`);
    if (name in labels) throw new Error(`label ${name} twice in: ${line}`);
    labels[name] = value;
    i = j + 1;
    if (text[i] === ',') i++;
    else if (i < text.length) throw new Error(`expected ',' in: ${line}`);
  }
  return labels;
}

function parseValue(s: string, line: string): number {
  if (s === '+Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  if (s === 'NaN') return NaN;
  if (!/^-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/.test(s)) throw new Error(`bad value "${s}" in: ${line}`);
  return Number(s);
}

/** The family a sample belongs to (histogram samples carry suffixes). */
function familyOf(name: string, types: Map<string, string>): string {
  if (types.has(name)) return name;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    const base = name.endsWith(suffix) ? name.slice(0, -suffix.length) : '';
    if (base && types.get(base) === 'histogram') return base;
  }
  return name;
}

export function parsePrometheus(text: string): Exposition {
  if (!text.endsWith('\n')) throw new Error('the exposition must end with a newline');
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  const seenSamples = new Set<string>();
  for (const line of text.slice(0, -1).split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) continue; // a plain comment
      const [, kind, name, rest] = m;
      if (!NAME.test(name!)) throw new Error(`bad metric name in: ${line}`);
      if (kind === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest!)) throw new Error(`bad type in: ${line}`);
        if (types.has(name!)) throw new Error(`TYPE of ${name} declared twice`);
        if (samples.some((s) => familyOf(s.name, types) === name)) throw new Error(`TYPE of ${name} after its samples`);
        types.set(name!, rest!);
      }
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( -?\d+)?$/.exec(line);
    if (!m) throw new Error(`bad sample line: ${line}`);
    const sample = { name: m[1]!, labels: m[3] ? parseLabels(m[3], line) : {}, value: parseValue(m[4]!, line) };
    const family = familyOf(sample.name, types);
    if (!types.has(family)) throw new Error(`sample before the TYPE of its metric: ${line}`);
    const id = `${sample.name}${JSON.stringify(Object.entries(sample.labels).sort())}`;
    if (seenSamples.has(id)) throw new Error(`duplicate sample: ${line}`);
    seenSamples.add(id);
    if (types.get(family) === 'counter' && !(sample.value >= 0)) throw new Error(`negative counter: ${line}`);
    samples.push(sample);
  }
  checkHistograms(types, samples);
  return { types, samples };
}

function checkHistograms(types: Map<string, string>, samples: Sample[]): void {
  for (const [name, type] of types) {
    if (type !== 'histogram') continue;
    const series = new Map<string, { buckets: [number, number][]; sum?: number; count?: number }>();
    for (const s of samples) {
      if (s.name !== `${name}_bucket` && s.name !== `${name}_sum` && s.name !== `${name}_count`) continue;
      const { le, ...rest } = s.labels;
      const key = JSON.stringify(Object.entries(rest).sort());
      const entry = series.get(key) ?? { buckets: [] };
      series.set(key, entry);
      if (s.name === `${name}_bucket`) {
        if (le === undefined) throw new Error(`${name}_bucket without le`);
        entry.buckets.push([parseValue(le, le), s.value]);
      } else if (s.name === `${name}_sum`) entry.sum = s.value;
      else if (s.name === `${name}_count`) entry.count = s.value;
    }
    for (const [key, e] of series) {
      if (e.sum === undefined || e.count === undefined) throw new Error(`${name}${key}: missing _sum or _count`);
      const last = e.buckets.at(-1);
      if (!last || last[0] !== Infinity) throw new Error(`${name}${key}: no +Inf bucket last`);
      if (last[1] !== e.count) throw new Error(`${name}${key}: +Inf bucket ${last[1]} != count ${e.count}`);
      for (let i = 1; i < e.buckets.length; i++) {
        if (!(e.buckets[i]![0] > e.buckets[i - 1]![0])) throw new Error(`${name}${key}: le not increasing`);
        if (e.buckets[i]![1] < e.buckets[i - 1]![1]) throw new Error(`${name}${key}: buckets not cumulative`);
      }
    }
  }
}

export function sampleValue(e: Exposition, name: string, labels: Record<string, string> = {}): number | undefined {
  return e.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}
