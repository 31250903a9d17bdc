// Captured frames → trace lines: one per message (a RaftBatch yields one per message inside),
// named by replica rather than address, with the message's decoded fields. Pure: no I/O, no clock.
//
// Who sent a frame: a Raft message says so itself (from, to); other frames (FORWARD, responses,
// HELLO) are named through the address book, which learns the dialing side of every replica link
// from its HELLO and its Raft messages. Frames the source reports with their ends (the in-process
// tap) need no book.
import { FrameType, frameClass, frameTypeName, isRaftFrame } from '../wire/frame-types.ts';
import { summarizeBody, type FieldValue, type FrameSummary } from '../wire/names.ts';
import { replicaName, endpointText, type AddressBook } from './address-book.ts';
import type { Flow } from './reassembly.ts';

/** What a line needs of a frame; `Frame` from frames.ts is one. */
export interface FrameInput {
  /** CLOCK_MONOTONIC nanoseconds. */
  ts: bigint;
  type: number;
  requestId: number;
  /** The length field: 5 + body bytes. */
  length: number;
  bodyPrefix: Uint8Array;
  /** The connection direction it travelled (captured frames). */
  flow?: Flow;
}

/** Sender and receiver as the source knows them (the tap). */
export interface KnownEnds {
  from: number;
  to: number;
}

export interface TraceLine {
  ts: bigint;
  group: number | undefined;
  /** Replica ids, when known. */
  from: number | undefined;
  to: number | undefined;
  /** `r<id>`, or `addr:port` for an endpoint that is not a known replica. */
  src: string;
  dst: string;
  /** AppendEntries, RequestVote, Forward(Put), Hello, Ok, … */
  msg: string;
  /** The message's type byte. */
  wire: number;
  /** Non-zero for requests and responses. */
  requestId?: number;
  fields: Record<string, FieldValue>;
  /** Body bytes of the message (declared, not captured). */
  bytes: number;
  /** Some fields are missing: the capture cut the body before them. */
  partial: boolean;
  /** Position inside a RaftBatch frame. */
  batch?: { index: number; count: number };
}

export interface LineCounters {
  /** Frames decoded. */
  frames: number;
  /** Messages in them (each message of a batch counts). */
  messages: number;
  lines: number;
  /** Messages not shown: client connections, or (with `sender`) other replicas' traffic. */
  hidden: number;
  /** Lines with fields missing. */
  partial: number;
  /** Frames or batch items that did not decode (unknown type, malformed body). */
  undecodable: number;
  /** Batch items the capture cut away entirely (snap length). */
  unseen: number;
}

export interface LineDecoderOptions {
  /** Show client connections too (default: replica links only). */
  includeClients?: boolean;
  /** Show only what this replica sends (`kvs server --trace`). */
  sender?: number;
  /** Connections whose kind is remembered. */
  maxConnections?: number;
}

export const MESSAGE_NAMES: Readonly<Record<number, string>> = {
  [FrameType.Hello]: 'Hello',
  [FrameType.RaftPreVote]: 'PreVote',
  [FrameType.RaftPreVoteResp]: 'PreVoteResp',
  [FrameType.RaftVote]: 'RequestVote',
  [FrameType.RaftVoteResp]: 'RequestVoteResp',
  [FrameType.RaftAppend]: 'AppendEntries',
  [FrameType.RaftAppendResp]: 'AppendEntriesResp',
  [FrameType.RaftHeartbeat]: 'Heartbeat',
  [FrameType.RaftHeartbeatResp]: 'HeartbeatResp',
  [FrameType.RaftSnapshot]: 'InstallSnapshot',
  [FrameType.RaftSnapshotResp]: 'InstallSnapshotResp',
  [FrameType.RaftTimeoutNow]: 'TimeoutNow',
  [FrameType.RaftReadIndex]: 'ReadIndex',
  [FrameType.RaftReadIndexResp]: 'ReadIndexResp',
  [FrameType.Forward]: 'Forward',
  // partition hand-off (src/wire/handoff-codec.ts): client-class requests on a plain connection
  0x10: 'HandoffFreeze',
  0x11: 'HandoffExport',
  0x90: 'HandoffExportChunk',
};

/**
 * The field a complete decode of each type ends with. names.ts reads fixed fields only (lengths of
 * data, not the data), so a body cut after this field still gave every field: not partial.
 */
const LAST_FIELD: Readonly<Record<number, string>> = {
  [FrameType.Hello]: 'group',
  [FrameType.RaftPreVote]: 'lastTerm',
  [FrameType.RaftPreVoteResp]: 'reject',
  [FrameType.RaftVote]: 'transfer',
  [FrameType.RaftVoteResp]: 'reject',
  [FrameType.RaftAppend]: 'entries',
  [FrameType.RaftHeartbeat]: 'round',
  [FrameType.RaftHeartbeatResp]: 'round',
  [FrameType.RaftSnapshot]: 'dataBytes',
  [FrameType.RaftSnapshotResp]: 'done',
  [FrameType.RaftTimeoutNow]: 'term',
  [FrameType.RaftReadIndex]: 'ctxBytes',
  [FrameType.RaftReadIndexResp]: 'ctxBytes',
  [FrameType.Put]: 'valueBytes',
  [FrameType.Batch]: 'ops',
  [FrameType.Value]: 'value',
  [FrameType.CasResult]: 'ok',
  [FrameType.ScanPage]: 'items',
  [FrameType.KeyCount]: 'count',
};

export function messageName(type: number): string {
  return MESSAGE_NAMES[type] ?? frameTypeName(type);
}

/** A type this decoder can name (also the resync plausibility check). */
export function isKnownType(type: number): boolean {
  return MESSAGE_NAMES[type] !== undefined || !frameTypeName(type).startsWith('0x');
}

function incomplete(s: FrameSummary): boolean {
  if (!s.partial) return false;
  if (s.type === FrameType.RaftAppendResp) return !('reject' in s.fields) || (s.fields.reject === true && !('hintTerm' in s.fields));
  const last = LAST_FIELD[s.type];
  return last === undefined || !(last in s.fields);
}

type ConnKind = 'replica' | 'client';

export class LineDecoder {
  readonly counters: LineCounters = { frames: 0, messages: 0, lines: 0, hidden: 0, partial: 0, undecodable: 0, unseen: 0 };
  private readonly conns = new Map<string, ConnKind>();
  private readonly maxConnections: number;

  constructor(
    private readonly book: AddressBook,
    private readonly opts: LineDecoderOptions = {},
  ) {
    this.maxConnections = opts.maxConnections ?? 8192;
  }

  /** The lines of one frame (none when hidden or undecodable). */
  decode(frame: FrameInput, ends?: KnownEnds): TraceLine[] {
    this.counters.frames++;
    const bodyLength = frame.length - 5;
    const s = summarizeBody(frame.type, frame.bodyPrefix, bodyLength);
    const conn = ends === undefined ? this.classify(frame, s) : 'replica';
    const out: TraceLine[] = [];
    if (frame.type === FrameType.RaftBatch) {
      const inner = s.inner ?? [];
      const count = typeof s.fields.messages === 'number' ? s.fields.messages : inner.length;
      inner.forEach((m, index) => this.message(frame, m, conn, ends, out, { index, count }));
      if (s.fields.messages === undefined) this.counters.undecodable++; // not even the count was there
      this.counters.unseen += Math.max(0, count - inner.length);
      return out;
    }
    this.message(frame, s, conn, ends, out, undefined);
    return out;
  }

  /**
   * After decoding a frame of this flow: 'hide' when nothing it carries will be shown (another
   * replica's sends, a client connection), so a caller may stop feeding its segments.
   */
  verdict(flow: Flow): 'hide' | 'show' | undefined {
    const kind = this.conns.get(connKeyOf(flow));
    if (kind === 'client' && !this.opts.includeClients) return 'hide';
    if (this.opts.sender === undefined) return kind === 'replica' ? 'show' : undefined;
    const sender = this.book.idOf(flow.src, connKeyOf(flow));
    if (sender === undefined) return undefined;
    return sender === this.opts.sender ? 'show' : 'hide';
  }

  private message(frame: FrameInput, s: FrameSummary, conn: ConnKind | undefined, ends: KnownEnds | undefined, out: TraceLine[], batch: TraceLine['batch']): void {
    this.counters.messages++;
    if (s.malformed || !isKnownType(s.type)) {
      this.counters.undecodable++;
      return;
    }
    let from = ends?.from;
    let to = ends?.to;
    if (isRaftFrame(s.type)) {
      if (typeof s.fields.from === 'number') from ??= s.fields.from;
      if (typeof s.fields.to === 'number') to ??= s.fields.to;
      if (frame.flow !== undefined && ends === undefined) {
        const conn = connKeyOf(frame.flow);
        if (typeof s.fields.from === 'number' && s.fields.from > 0) this.book.learn(conn, frame.flow.src, s.fields.from);
        if (typeof s.fields.to === 'number' && s.fields.to > 0) this.book.learn(conn, frame.flow.dst, s.fields.to);
      }
    }
    if (frame.flow !== undefined) {
      const conn = connKeyOf(frame.flow);
      from ??= this.book.idOf(frame.flow.src, conn);
      to ??= this.book.idOf(frame.flow.dst, conn);
    }
    const hide = (conn !== 'replica' && !this.opts.includeClients) || (this.opts.sender !== undefined && from !== this.opts.sender);
    if (hide) {
      this.counters.hidden++;
      return;
    }
    let msg = messageName(s.type);
    let partial = incomplete(s);
    const fields = shapeFields(s.type, s.fields);
    const inner = s.inner?.[0];
    if (s.type === FrameType.Forward && inner !== undefined) {
      msg = `Forward(${messageName(inner.type)})`;
      fields.op = messageName(inner.type);
      for (const k in inner.fields) fields[k] = inner.fields[k]!;
      partial ||= incomplete(inner);
    }
    const line: TraceLine = {
      ts: frame.ts,
      group: this.book.groupOf(from) ?? this.book.groupOf(to),
      from,
      to,
      src: label(from, frame.flow?.src),
      dst: label(to, frame.flow?.dst),
      msg,
      wire: s.type,
      fields,
      bytes: s.bytes,
      partial,
    };
    if (frame.requestId !== 0 && batch === undefined) line.requestId = frame.requestId;
    if (batch !== undefined) line.batch = batch;
    if (partial) this.counters.partial++;
    this.counters.lines++;
    out.push(line);
  }

  /** What kind of connection the frame travelled on; learns from HELLOs. */
  private classify(frame: FrameInput, s: FrameSummary): ConnKind | undefined {
    if (frame.flow === undefined) return undefined;
    const k = connKeyOf(frame.flow);
    const cls = frameClass(frame.type);
    let kind = this.conns.get(k);
    // Hand-off requests use client-class types on a plain connection; everything 0x40–0x7F is a replica link.
    if (cls === 'replica') kind = 'replica';
    else if (cls === 'client' && kind === undefined) kind = 'client';
    if (kind !== undefined && this.conns.get(k) !== kind) {
      this.conns.delete(k);
      this.conns.set(k, kind);
      if (this.conns.size > this.maxConnections) {
        const oldest = this.conns.keys().next().value;
        if (oldest !== undefined) this.conns.delete(oldest);
      }
    }
    if (frame.type === FrameType.Hello && !s.malformed && typeof s.fields.replica === 'number' && s.fields.replica > 0) {
      this.book.learn(k, frame.flow.src, s.fields.replica, typeof s.fields.group === 'number' ? s.fields.group : undefined);
    }
    return kind;
  }
}

/**
 * Protocol field names → trace field names, in one pass: Raft from/to become the line's ends, a
 * Snapshot's seq is the chunk, an Append gains its first index, HELLO's magic goes.
 */
function shapeFields(type: number, f: Record<string, FieldValue>): Record<string, FieldValue> {
  const out: Record<string, FieldValue> = {};
  const raft = isRaftFrame(type);
  const snapshot = type === FrameType.RaftSnapshot || type === FrameType.RaftSnapshotResp;
  for (const k in f) {
    const v = f[k]!;
    if (raft && (k === 'from' || k === 'to')) continue;
    if (type === FrameType.Hello && k === 'magic') continue;
    if (type === FrameType.RaftAppend && k === 'lastIndex' && typeof f.prevIndex === 'number') out.firstIndex = f.prevIndex + 1;
    out[snapshot && k === 'seq' ? 'chunk' : k] = v;
  }
  return out;
}

function label(id: number | undefined, ep: { addr: string; port: number } | undefined): string {
  if (id !== undefined) return replicaName(id);
  return ep !== undefined ? endpointText(ep) : '?';
}

const connKeys = new WeakMap<Flow, string>();

/** Both directions of a connection share the key (computed once per flow object). */
function connKeyOf(flow: Flow): string {
  let k = connKeys.get(flow);
  if (k === undefined) {
    const a = `${flow.src.addr}|${flow.src.port}`;
    const b = `${flow.dst.addr}|${flow.dst.port}`;
    k = a < b ? `${a}|${b}` : `${b}|${a}`;
    connKeys.set(flow, k);
  }
  return k;
}
