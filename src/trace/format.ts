// Trace lines and summaries as text: human-readable (default) or one JSON object per line. Pure:
// the caller passes the wall-clock time of each line.
import type { FieldValue } from '../wire/names.ts';
import type { LineCounters, TraceLine } from './lines.ts';

export type TraceFormat = 'text' | 'json';

export interface TraceSummary extends LineCounters {
  source: 'ebpf' | 'tap';
  /** Captured bytes no frame could be found in. */
  undecodableBytes: number;
  /** Times a flow lost and found frame boundaries again. */
  resyncs: number;
  /** Bytes that passed but were never captured (ring drops, holes that timed out). */
  lostBytes: number;
  /** Payload bytes beyond the snap length: frames inside them are not seen, one across the cut is partial. */
  cutBytes: number;
  /** Records (segments, or tapped frames) the source lost: ring buffer full, tap queue full. */
  drops: number;
  /** Ring records that did not parse. */
  badRecords: number;
}

/** Nanoseconds since the epoch → local `HH:MM:SS.uuuuuu`. */
export function clockText(wallNs: bigint): string {
  const d = new Date(Number(wallNs / 1_000_000n));
  const p2 = (n: number): string => String(n).padStart(2, '0');
  const micros = String((wallNs % 1_000_000_000n) / 1000n).padStart(6, '0');
  return `${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}.${micros}`;
}

/** Nanoseconds since the epoch → ISO 8601 UTC with microseconds. */
export function isoText(wallNs: bigint): string {
  const iso = new Date(Number(wallNs / 1_000_000n)).toISOString();
  const micros = String((wallNs % 1_000_000_000n) / 1000n).padStart(6, '0');
  return `${iso.slice(0, 19)}.${micros}Z`;
}

export function groupText(group: number | undefined): string {
  return group === undefined ? 'g?' : `g${group}`;
}

function valueText(v: FieldValue): string {
  return String(v);
}

/**
 * `12:00:01.123456 g0 r1 -> r2 AppendEntries term=5 prevIndex=9 prevTerm=4 commit=8 entries=2 index=10..11 bytes=140`
 */
export function textLine(line: TraceLine, wallNs: bigint): string {
  const parts = [clockText(wallNs), groupText(line.group), line.src, '->', line.dst, line.requestId === undefined ? line.msg : `${line.msg} #${line.requestId}`];
  const f = line.fields;
  for (const [k, v] of Object.entries(f)) {
    if (k === 'firstIndex' || k === 'op') continue;
    if (k === 'lastIndex' && typeof f.firstIndex === 'number') parts.push(f.firstIndex === v ? `index=${v}` : `index=${f.firstIndex}..${v}`);
    else parts.push(`${k}=${valueText(v)}`);
  }
  parts.push(`bytes=${line.bytes}`);
  if (line.partial) parts.push('partial');
  return parts.join(' ');
}

/** `{"kind":"msg","ts":…,"group":0,"from":1,"to":2,"msg":"AppendEntries","term":5,…}` */
export function jsonLine(line: TraceLine, wallNs: bigint): string {
  const o: Record<string, unknown> = { kind: 'msg', ts: isoText(wallNs), group: line.group ?? null, from: line.from ?? null, to: line.to ?? null };
  if (line.from === undefined) o.src = line.src;
  if (line.to === undefined) o.dst = line.dst;
  o.msg = line.msg;
  o.type = `0x${line.wire.toString(16).padStart(2, '0')}`;
  if (line.requestId !== undefined) o.requestId = line.requestId;
  for (const [k, v] of Object.entries(line.fields)) if (!(k in o)) o[k] = v;
  o.bytes = line.bytes;
  o.partial = line.partial;
  if (line.batch !== undefined) o.batch = `${line.batch.index + 1}/${line.batch.count}`;
  return JSON.stringify(o);
}

export function formatLine(line: TraceLine, format: TraceFormat, wallNs: bigint): string {
  return format === 'json' ? jsonLine(line, wallNs) : textLine(line, wallNs);
}

const SUMMARY_KEYS: (keyof TraceSummary)[] = [
  'frames',
  'messages',
  'lines',
  'hidden',
  'partial',
  'undecodable',
  'undecodableBytes',
  'unseen',
  'resyncs',
  'lostBytes',
  'cutBytes',
  'drops',
  'badRecords',
];

/**
 * `# 12:00:10.000000 g0 r1 trace summary (final): source=ebpf frames=… drops=0`, or a JSON object
 * with `"kind":"summary"`. `label` says whose trace it is.
 */
export function formatSummaryLine(s: TraceSummary, format: TraceFormat, wallNs: bigint, label: string, final: boolean): string {
  if (format === 'json') {
    const o: Record<string, unknown> = { kind: 'summary', ts: isoText(wallNs), label, final, source: s.source };
    for (const k of SUMMARY_KEYS) o[k] = s[k];
    return JSON.stringify(o);
  }
  const counts = SUMMARY_KEYS.map((k) => `${k}=${s[k]}`).join(' ');
  return `# ${clockText(wallNs)} ${label} trace summary${final ? ' (final)' : ''}: source=${s.source} ${counts}`;
}
