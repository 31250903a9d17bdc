// Short human-readable summaries of frames, for tracing. The eBPF tracer captures only the first
// bytes of TCP payloads, so this works on truncated bodies: it reports whatever fields are fully
// present and marks the summary partial. It never throws on any input.

import { Reader } from './bytes.ts';
import { BadRequestError } from './errors.ts';
import { DEFAULT_MAX_FRAME_BYTES, HEADER_BYTES, LENGTH_BYTES, MIN_LENGTH, readFrameHeader } from './frame.ts';
import { frameClass, type FrameClass, FrameType, frameTypeName, isRaftFrame } from './frame-types.ts';
import { ErrorCode } from './client-types.ts';

export type FieldValue = number | string | boolean;

export interface FrameSummary {
  type: number;
  name: string;
  class: FrameClass;
  requestId?: number;
  /** Body size: declared by the header when known, else what was seen. */
  bytes: number;
  /** The body was cut short (capture limit): fields after the cut are missing. */
  partial: boolean;
  /** The whole body was there but did not parse. */
  malformed: boolean;
  fields: Record<string, FieldValue>;
  /** Messages of a batch, the request inside a forward, the frame inside a channel. */
  inner?: FrameSummary[];
}

type Fields = Record<string, FieldValue>;

const PREVIEW_BYTES = 24;

/** A key as text when printable ASCII, else hex; long keys are cut with "…". */
export function preview(b: Uint8Array): string {
  const cut = b.length > PREVIEW_BYTES;
  const s = b.subarray(0, PREVIEW_BYTES);
  let text = true;
  for (const c of s) if (c < 0x20 || c > 0x7e || c === 0x22) text = false;
  const body = text ? `"${Buffer.from(s).toString('latin1')}"` : `0x${Buffer.from(s).toString('hex')}`;
  return cut ? `${body}…(${b.length})` : body;
}

function raft(r: Reader, type: number, f: Fields): void {
  f.from = r.u32();
  f.to = r.u32();
  f.term = r.u64();
  switch (type) {
    case FrameType.RaftPreVote:
    case FrameType.RaftVote:
      f.lastIndex = r.u64();
      f.lastTerm = r.u64();
      if (type === FrameType.RaftVote) f.transfer = r.bool();
      return;
    case FrameType.RaftPreVoteResp:
    case FrameType.RaftVoteResp:
      f.reject = r.bool();
      return;
    case FrameType.RaftAppend: {
      f.prevIndex = r.u64();
      f.prevTerm = r.u64();
      f.commit = r.u64();
      const n = r.u32();
      f.entries = n;
      if (n > 0) f.lastIndex = (f.prevIndex as number) + n;
      return;
    }
    case FrameType.RaftAppendResp:
      f.index = r.u64();
      f.reject = r.bool();
      if (f.reject) {
        f.hintIndex = r.u64();
        f.hintTerm = r.u64();
      } else {
        r.raw(16); // hints of an acceptance: zero
      }
      if (r.remaining > 0 && r.u8() === 1) f.blank = true; // protocol 4: the sender is blank
      return;
    case FrameType.RaftHeartbeat:
      f.commit = r.u64();
      f.round = r.u64();
      if (r.remaining > 0 && r.u8() === 1) f.quiet = true; // protocol 2: the leader is quiet
      return;
    case FrameType.RaftHeartbeatResp:
      f.round = r.u64();
      if (r.remaining > 0 && r.u8() === 1) f.blank = true; // protocol 4: the sender is blank
      return;
    case FrameType.RaftSnapshot:
    case FrameType.RaftSnapshotResp: {
      f.snapIndex = r.u64();
      f.snapTerm = r.u64();
      f.voters = r.u16();
      r.raw((f.voters as number) * 4);
      f.learners = r.u16();
      r.raw((f.learners as number) * 4);
      f.transfer = r.u32();
      f.seq = r.i32();
      if (type === FrameType.RaftSnapshot) {
        f.last = r.bool();
        f.dataBytes = r.u32();
      } else {
        f.done = r.bool();
      }
      return;
    }
    case FrameType.RaftReadIndex:
      f.ctxBytes = r.u32();
      return;
    case FrameType.RaftReadIndexResp:
      f.index = r.u64OrNone();
      f.ctxBytes = r.u32();
      return;
  }
}

function writeId(r: Reader, f: Fields): void {
  f.client = r.big64().toString(16);
  f.seq = r.u64();
}

function client(r: Reader, type: number, f: Fields): void {
  switch (type) {
    case FrameType.Get:
      f.consistency = r.u8() === 1 ? 'stale' : 'linearizable';
      f.key = preview(r.bytes16());
      return;
    case FrameType.Put:
    case FrameType.Delete:
    case FrameType.Cas:
      writeId(r, f);
      f.key = preview(r.bytes16());
      if (type === FrameType.Put) f.valueBytes = r.u32();
      if (type === FrameType.Cas) {
        f.expect = r.bool() ? `${r.bytes32().length}B` : 'absent';
        f.value = r.bool() ? `${r.bytes32().length}B` : 'delete';
      }
      return;
    case FrameType.Scan:
      f.consistency = r.u8() === 1 ? 'stale' : 'linearizable';
      f.limit = r.u32();
      f.start = preview(r.bytes16());
      f.end = r.bool() ? preview(r.bytes16()) : 'end';
      return;
    case FrameType.Batch:
      writeId(r, f);
      f.ops = r.u32();
      return;
    case FrameType.Count:
      f.consistency = r.u8() === 1 ? 'stale' : 'linearizable';
      return;
  }
}

const ERROR_NAMES = new Map<number, string>(Object.entries(ErrorCode).map(([k, v]) => [v, k]));

function response(r: Reader, type: number, f: Fields): void {
  switch (type) {
    case FrameType.Value:
      f.value = r.bool() ? `${r.u32()}B` : 'absent';
      return;
    case FrameType.CasResult:
      f.ok = r.bool();
      return;
    case FrameType.ScanPage:
      f.items = r.u32();
      return;
    case FrameType.KeyCount:
      f.count = r.u64();
      return;
    case FrameType.StatusInfo:
      f.replica = r.u32();
      f.group = r.u32();
      f.role = r.u8();
      f.term = r.u64();
      f.leader = r.u32();
      return;
    case FrameType.Error: {
      const code = r.u16();
      f.code = ERROR_NAMES.get(code) ?? code;
      f.message = r.str16();
      if (code === ErrorCode.NOT_LEADER) {
        f.leader = r.u32();
        f.leaderAddr = r.str16();
      } else if (code === ErrorCode.WRONG_GROUP) {
        f.epoch = r.u64();
      }
      return;
    }
  }
}

/** HELLO without the process id (hello.ts). */
const HELLO_BYTES = 14;

function hello(r: Reader, f: Fields, bodyLength: number): void {
  f.magic = r.u32().toString(16);
  f.version = r.u16();
  f.replica = r.u32();
  f.group = r.u32();
  // Protocol 3: an acceptor's answer may name its process (a u64 after the group).
  if ((f.version as number) >= 3 && bodyLength > HELLO_BYTES) f.process = r.u64();
}

/**
 * Summarises one frame body. `bodyLength` is the length the header declared; pass it when the
 * capture may have cut the body short (`body.length < bodyLength`).
 */
export function summarizeBody(type: number, body: Uint8Array, bodyLength = body.length): FrameSummary {
  return summarize(type, body, bodyLength, false);
}

/**
 * `nested`: inside a batch or forward, where only plain messages/requests may appear (no recursion).
 * A CHANNEL's inner frame is summarised as a top-level frame (a batch, a forward or a response may
 * be inside), but never a HELLO or another CHANNEL: nesting stops there.
 */
function summarize(type: number, body: Uint8Array, bodyLength: number, nested: boolean): FrameSummary {
  const s: FrameSummary = {
    type,
    name: frameTypeName(type),
    class: frameClass(type),
    bytes: bodyLength,
    partial: body.length < bodyLength,
    malformed: false,
    fields: {},
  };
  const r = new Reader(body, s.name);
  try {
    if (isRaftFrame(type)) raft(r, type, s.fields);
    else if (nested && s.class !== 'client') s.malformed = true;
    else if (type === FrameType.RaftBatch) batch(r, s.fields, (s.inner = []));
    else if (type === FrameType.Forward) forward(r, s.fields, bodyLength, (s.inner = []));
    else if (type === FrameType.Channel) channel(r, s, bodyLength);
    else if (type === FrameType.Hello) hello(r, s.fields, bodyLength);
    else if (s.class === 'client') client(r, type, s.fields);
    else if (s.class === 'response') response(r, type, s.fields);
  } catch (e) {
    if (!(e instanceof BadRequestError)) throw e;
    // Running out of bytes on a cut body is expected; on a complete body it means garbage.
    if (!s.partial) s.malformed = true;
  }
  if (s.inner?.some((i) => i.partial)) s.partial = true;
  if (s.inner?.some((i) => i.malformed)) s.malformed = true;
  return s;
}

function batch(r: Reader, f: Fields, inner: FrameSummary[]): void {
  const n = r.u16();
  f.messages = n;
  for (let i = 0; i < n; i++) {
    const type = r.u8();
    const len = r.u32();
    const s = summarize(type, r.raw(Math.min(len, r.remaining)), len, true);
    if (!isRaftFrame(type)) s.malformed = true;
    inner.push(s);
  }
}

function forward(r: Reader, f: Fields, bodyLength: number, inner: FrameSummary[]): void {
  const type = r.u8();
  f.hops = r.u8();
  const s = summarize(type, r.raw(r.remaining), bodyLength - 2, true);
  // Inside a forward only client requests are legal; raft messages there are garbage.
  if (s.class !== 'client') s.malformed = true;
  inner.push(s);
}

/** group + from + to before a CHANNEL's inner frame (channel.ts). */
const CHANNEL_FIELDS_BYTES = 12;

/**
 * CHANNEL: the group and both replicas, then one whole frame of another pair, summarised as
 * `inner[0]` (with its own request id). A problem of the CHANNEL itself (a replica id 0, an inner
 * length that disagrees with the CHANNEL's, an inner HELLO or CHANNEL) marks the CHANNEL malformed
 * and leaves `inner` empty, even when the capture was cut; a cut before the inner header leaves
 * it empty and the summary partial.
 */
function channel(r: Reader, s: FrameSummary, bodyLength: number): void {
  const f = s.fields;
  s.inner = [];
  // Too short for the ids and a header: known from the declared length, cut capture or not.
  if (bodyLength < CHANNEL_FIELDS_BYTES + HEADER_BYTES) s.malformed = true;
  f.group = r.u32();
  f.from = r.u32();
  f.to = r.u32();
  if (f.from === 0 || f.to === 0) s.malformed = true;
  if (s.malformed) return;
  const length = r.u32();
  const type = r.u8();
  const requestId = r.u32();
  const innerBody = bodyLength - CHANNEL_FIELDS_BYTES - HEADER_BYTES;
  if (length !== MIN_LENGTH + innerBody || type === FrameType.Hello || type === FrameType.Channel) {
    s.malformed = true;
    return;
  }
  const inner = summarize(type, r.raw(Math.min(innerBody, r.remaining)), innerBody, false);
  inner.requestId = requestId;
  s.inner.push(inner);
}

/**
 * Summarises the frames in a captured payload that starts on a frame boundary. The last frame may
 * be cut short. A fragment shorter than a header, or an impossible length (framing lost), ends
 * the walk with a summary named "fragment" or "garbage".
 */
export function summarizeCaptured(payload: Uint8Array, maxFrameBytes = DEFAULT_MAX_FRAME_BYTES): FrameSummary[] {
  const out: FrameSummary[] = [];
  let off = 0;
  while (off < payload.length) {
    const h = readFrameHeader(payload, off);
    const rest = payload.length - off;
    const badLength = h !== null && (h.length < MIN_LENGTH || h.length > maxFrameBytes - LENGTH_BYTES);
    if (h === null || badLength) {
      out.push({
        type: -1,
        name: h === null ? 'fragment' : 'garbage',
        class: 'invalid',
        bytes: rest,
        partial: h === null,
        malformed: h !== null,
        fields: h === null ? {} : { length: h.length },
      });
      break;
    }
    const bodyLength = h.length - MIN_LENGTH;
    const start = off + HEADER_BYTES;
    const s = summarizeBody(h.type, payload.subarray(start, Math.min(start + bodyLength, payload.length)), bodyLength);
    s.requestId = h.requestId;
    out.push(s);
    off += LENGTH_BYTES + h.length;
  }
  return out;
}

/** One line, e.g. `RaftAppend from=1 to=2 term=5 prevIndex=9 … entries=64 bytes=8231 partial`. */
export function formatSummary(s: FrameSummary): string {
  const parts = [s.name];
  if (s.requestId !== undefined && s.requestId !== 0) parts.push(`#${s.requestId}`);
  for (const [k, v] of Object.entries(s.fields)) parts.push(`${k}=${v}`);
  parts.push(`bytes=${s.bytes}`);
  if (s.partial) parts.push('partial');
  if (s.malformed) parts.push('malformed');
  let line = parts.join(' ');
  if (s.inner !== undefined && s.inner.length > 0) line += ` [${s.inner.map(formatSummary).join('; ')}]`;
  return line;
}
