// Captured frames → trace lines: one per message (a RaftBatch yields one per message inside),
// named by replica rather than address, with the message's decoded fields. Pure: no I/O, no clock.
//
// Who sent a frame: a Raft message says so itself (from, to); other frames (FORWARD, responses,
// HELLO) are named through the address book, which learns the dialing side of every replica link
// from its HELLO and its Raft messages. Frames the source reports with their ends (the in-process
// tap) need no book.
//
// A CHANNEL frame (docs/protocol.md §6.5) carries another pair's frame on a connection between two
// processes: it gives the lines its inner frame would, named by the group and replicas the CHANNEL
// states (not the connection's own pair, whose ids the flow and the book hold), with a `group`
// field and `channel` set. What it carries never teaches the book about the flow's endpoints.
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
  /** Carried inside a CHANNEL frame: group, from and to are the ones it names. */
  channel?: true;
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
  [FrameType.Channel]: 'Channel',
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

/** HELLO's body up to the group; version 3 may add a u64 process. */
const HELLO_BYTES = 14;

function incomplete(s: FrameSummary): boolean {
  if (!s.partial) return false;
  if (s.type === FrameType.Hello) return !('group' in s.fields) || (s.bytes > HELLO_BYTES && !('process' in s.fields));
  if (s.type === FrameType.RaftAppendResp) return !('reject' in s.fields) || (s.fields.reject === true && !('hintTerm' in s.fields));
  const last = LAST_FIELD[s.type];
  return last === undefined || !(last in s.fields);
}

type ConnKind = 'replica' | 'client';

/** What a CHANNEL frame names for the frame it carries; undefined where the capture cut it off. */
interface Via {
  group: number | undefined;
  from: number | undefined;
  to: number | undefined;
}

const num = (v: FieldValue | undefined): number | undefined => (typeof v === 'number' ? v : undefined);

export class LineDecoder {
  readonly counters: LineCounters = { frames: 0, messages: 0, lines: 0, hidden: 0, partial: 0, undecodable: 0, unseen: 0 };
  private readonly conns = new Map<string, ConnKind>();
  /**
   * Connections that carry, or may carry, other pairs' frames (CHANNEL), so what their flow's own
   * sender is does not decide what they show: 'shared' once a CHANNEL or a HELLO naming a process
   * was seen; else the flow key of a version ≥ 3 dialer's HELLO, until the answer tells.
   */
  private readonly shared = new Map<string, string>();
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
    let m = s;
    let requestId = frame.requestId;
    let via: Via | undefined;
    if (frame.type === FrameType.Channel) {
      via = { group: num(s.fields.group), from: num(s.fields.from), to: num(s.fields.to) };
      const inner = s.inner?.[0];
      if (inner === undefined) {
        // Malformed (counted undecodable), or cut before the carried frame's header: a partial
        // Channel line with the ids that are there.
        this.message(frame, s, conn, ends, out, undefined, 0, via);
        return out;
      }
      m = inner;
      requestId = inner.requestId ?? 0;
    }
    if (m.type === FrameType.RaftBatch) {
      const items = m.inner ?? [];
      const count = typeof m.fields.messages === 'number' ? m.fields.messages : items.length;
      items.forEach((item, index) => this.message(frame, item, conn, ends, out, { index, count }, 0, via));
      if (m.fields.messages === undefined) this.counters.undecodable++; // not even the count was there
      this.counters.unseen += Math.max(0, count - items.length);
      return out;
    }
    this.message(frame, m, conn, ends, out, undefined, requestId, via);
    return out;
  }

  /**
   * After decoding a frame of this flow: 'hide' when nothing it carries will be shown (another
   * replica's sends, a client connection), so a caller may stop feeding its segments. A connection
   * that may carry other pairs' frames (CHANNEL) is never hidden for its own pair's sender. (One
   * whose handshake the capture missed is judged by its own pair until a CHANNEL frame is seen.)
   */
  verdict(flow: Flow): 'hide' | 'show' | undefined {
    const k = connKeyOf(flow);
    const kind = this.conns.get(k);
    if (kind === 'client' && !this.opts.includeClients) return 'hide';
    if (this.opts.sender === undefined) return kind === 'replica' ? 'show' : undefined;
    const sender = this.book.idOf(flow.src, k);
    if (sender === this.opts.sender) return 'show';
    if (sender === undefined || this.shared.has(k)) return undefined;
    return 'hide';
  }

  private message(
    frame: FrameInput,
    s: FrameSummary,
    conn: ConnKind | undefined,
    ends: KnownEnds | undefined,
    out: TraceLine[],
    batch: TraceLine['batch'],
    requestId: number,
    via?: Via,
  ): void {
    this.counters.messages++;
    if (s.malformed || !isKnownType(s.type)) {
      this.counters.undecodable++;
      return;
    }
    // A CHANNEL names both ends of what it carries; the flow's and the tap's ends are the
    // connection's own pair, and its Raft messages' ids are about another pair than the flow's.
    let from = via !== undefined ? via.from : ends?.from;
    let to = via !== undefined ? via.to : ends?.to;
    if (via === undefined && isRaftFrame(s.type)) {
      if (typeof s.fields.from === 'number') from ??= s.fields.from;
      if (typeof s.fields.to === 'number') to ??= s.fields.to;
      if (frame.flow !== undefined && ends === undefined) {
        const conn = connKeyOf(frame.flow);
        if (typeof s.fields.from === 'number' && s.fields.from > 0) this.book.learn(conn, frame.flow.src, s.fields.from);
        if (typeof s.fields.to === 'number' && s.fields.to > 0) this.book.learn(conn, frame.flow.dst, s.fields.to);
      }
    }
    if (frame.flow !== undefined && via === undefined) {
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
    let fields = shapeFields(s.type, s.fields);
    if (via !== undefined && s.type !== FrameType.Channel && via.group !== undefined) fields = { group: via.group, ...fields };
    const inner = s.inner?.[0];
    if (s.type === FrameType.Forward && inner !== undefined) {
      msg = `Forward(${messageName(inner.type)})`;
      fields.op = messageName(inner.type);
      for (const k in inner.fields) fields[k] = inner.fields[k]!;
      partial ||= incomplete(inner);
    }
    const line: TraceLine = {
      ts: frame.ts,
      group: via?.group ?? this.book.groupOf(from) ?? this.book.groupOf(to),
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
    if (requestId !== 0 && batch === undefined) line.requestId = requestId;
    if (batch !== undefined) line.batch = batch;
    if (via !== undefined) line.channel = true;
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
    if (frame.type === FrameType.Channel || frame.type === FrameType.Hello) this.noteSharing(k, frame.flow.key, frame.type, s);
    return kind;
  }

  /**
   * Whether the connection may carry other pairs' frames: a CHANNEL frame or a HELLO naming a
   * process says yes; a version ≥ 3 dialer's HELLO says maybe, until an answer without a process
   * (or from an older acceptor) says no. A version 1 or 2 dialer's links never carry CHANNELs.
   */
  private noteSharing(k: string, flowKey: string, type: number, s: FrameSummary): void {
    const was = this.shared.get(k);
    let now = was;
    if (type === FrameType.Channel || s.fields.process !== undefined) now = 'shared';
    else if (s.malformed || s.partial || was === 'shared' || was === flowKey) return;
    else if (was !== undefined) now = undefined; // the answer named no process
    else if (typeof s.fields.version === 'number' && s.fields.version >= 3) now = flowKey;
    if (now === was) return;
    this.shared.delete(k);
    if (now === undefined) return;
    this.shared.set(k, now);
    if (this.shared.size > this.maxConnections) {
      const oldest = this.shared.keys().next().value;
      if (oldest !== undefined) this.shared.delete(oldest);
    }
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
    if ((raft || type === FrameType.Channel) && (k === 'from' || k === 'to')) continue;
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
