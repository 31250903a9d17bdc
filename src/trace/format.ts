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

/** A second's text is built once: lines come many per second. */
function perSecond(build: (ms: number) => string): (wallNs: bigint) => [string, string] {
  let lastSec = -1n;
  let lastText = '';
  return (wallNs) => {
    const sec = wallNs / 1_000_000_000n;
    if (sec !== lastSec) {
      lastSec = sec;
      lastText = build(Number(sec) * 1000);
    }
    return [lastText, String((wallNs % 1_000_000_000n) / 1000n).padStart(6, '0')];
  };
}

const p2 = (n: number): string => String(n).padStart(2, '0');
const localSecond = perSecond((ms) => {
  const d = new Date(ms);
  return `${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}`;
});
const utcSecond = perSecond((ms) => new Date(ms).toISOString().slice(0, 19));

/** Nanoseconds since the epoch → local `HH:MM:SS.uuuuuu`. */
export function clockText(wallNs: bigint): string {
  const [sec, micros] = localSecond(wallNs);
  return `${sec}.${micros}`;
}

/** Nanoseconds since the epoch → ISO 8601 UTC with microseconds. */
export function isoText(wallNs: bigint): string {
  const [sec, micros] = utcSecond(wallNs);
  return `${sec}.${micros}Z`;
}

export function groupText(group: number | undefined): string {
  return group === undefined ? 'g?' : `g${group}`;
}

/**
 * `12:00:01.123456 g0 r1 -> r2 AppendEntries term=5 prevIndex=9 prevTerm=4 commit=8 entries=2 index=10..11 bytes=140`
 * (a frame carried in a CHANNEL starts its fields with `group=`: `g2 r1 -> r5 Heartbeat group=2 term=5 …`).
 */
export function textLine(line: TraceLine, wallNs: bigint): string {
  let t = `${clockText(wallNs)} ${groupText(line.group)} ${line.src} -> ${line.dst} ${line.msg}`;
  if (line.requestId !== undefined) t += ` #${line.requestId}`;
  const f = line.fields;
  for (const k in f) {
    if (k === 'firstIndex' || k === 'op') continue;
    const v = f[k]!;
    if (k === 'lastIndex' && typeof f.firstIndex === 'number') t += f.firstIndex === v ? ` index=${v}` : ` index=${f.firstIndex}..${v}`;
    else t += ` ${k}=${v}`;
  }
  t += ` bytes=${line.bytes}`;
  return line.partial ? `${t} partial` : t;
}

const LINE_KEYS = new Set(['kind', 'ts', 'group', 'from', 'to', 'src', 'dst', 'msg', 'type', 'requestId', 'bytes', 'partial', 'batch', 'channel']);
const TYPE_TEXT = Array.from({ length: 256 }, (_, i) => `"0x${i.toString(16).padStart(2, '0')}"`);

function jsonValue(v: FieldValue): string {
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

/** `{"kind":"msg","ts":…,"group":0,"from":1,"to":2,"msg":"AppendEntries","type":"0x45","term":5,…}` (built by hand: it is the hot path). */
export function jsonLine(line: TraceLine, wallNs: bigint): string {
  let j = `{"kind":"msg","ts":"${isoText(wallNs)}","group":${line.group ?? null},"from":${line.from ?? null},"to":${line.to ?? null}`;
  if (line.from === undefined) j += `,"src":${JSON.stringify(line.src)}`;
  if (line.to === undefined) j += `,"dst":${JSON.stringify(line.dst)}`;
  // Message names and field names are plain identifiers (see lines.ts, names.ts): no escaping needed.
  j += `,"msg":"${line.msg}","type":${TYPE_TEXT[line.wire & 0xff]}`;
  if (line.requestId !== undefined) j += `,"requestId":${line.requestId}`;
  const f = line.fields;
  for (const k in f) if (!LINE_KEYS.has(k)) j += `,"${k}":${jsonValue(f[k]!)}`;
  j += `,"bytes":${line.bytes},"partial":${line.partial}`;
  if (line.batch !== undefined) j += `,"batch":"${line.batch.index + 1}/${line.batch.count}"`;
  if (line.channel) j += ',"channel":true';
  return `${j}}`;
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
 * with `"kind":"summary"`. `label` says whose trace it is; `who`, a replica's own trace (`kvs server
 * --trace`), adds its `group` and `replica` to the JSON, as the replica's log lines have them.
 */
export function formatSummaryLine(s: TraceSummary, format: TraceFormat, wallNs: bigint, label: string, final: boolean, who?: { group: number; replica: number }): string {
  if (format === 'json') {
    const o: Record<string, unknown> = { kind: 'summary', ts: isoText(wallNs), ...who, label, final, source: s.source };
    for (const k of SUMMARY_KEYS) o[k] = s[k];
    return JSON.stringify(o);
  }
  const counts = SUMMARY_KEYS.map((k) => `${k}=${s[k]}`).join(' ');
  return `# ${clockText(wallNs)} ${label} trace summary${final ? ' (final)' : ''}: source=${s.source} ${counts}`;
}
