// Raft messages as frame bodies. One frame type per message (RAFT_BASE + MsgType) so a tracer sees
// the kind from the header; a batch frame coalesces one turn's messages for one peer. Sizes are
// computed first and each frame is written into one exact-size buffer; entry data and contexts are
// decoded as views into the body (see Frame.body for when that memory must be copied).

import type { AppendRespMsg, ConfState, Entry, EntryType, HeartbeatMsg, HeartbeatRespMsg, Message, NodeId, SnapshotMeta } from '../raft/types.ts';
import { MsgType } from '../raft/types.ts';
import { Reader, U16_MAX, Writer } from './bytes.ts';
import { allocFrame, DEFAULT_MAX_FRAME_BYTES, finishFrame, HEADER_BYTES } from './frame.ts';
import { FrameType, isRaftFrame, RAFT_BASE } from './frame-types.ts';

/** from u32, to u32, term u64. */
const COMMON_BYTES = 16;
/** term u64, type u8, data length u32. */
const ENTRY_OVERHEAD = 13;
/** Inside a batch, each message is prefixed by its frame type u8 and body length u32. */
const BATCH_ITEM_OVERHEAD = 5;
const BATCH_COUNT_BYTES = 2;
/** A heartbeat's optional flags byte (protocol 2): the only flag, "the leader is quiet". */
const HEARTBEAT_QUIET = 1;
/**
 * An answer's optional flags byte (protocol 4), on AppendResp and HeartbeatResp: the only flag,
 * "the sender is blank" (RaftConfig.blankStart, not caught up since). Absent = no flag.
 */
const ANSWER_BLANK = 1;

export function raftFrameType(msg: Message): number {
  return RAFT_BASE + msg.type;
}

function metaSize(m: SnapshotMeta): number {
  return 8 + 8 + 2 + 4 * m.conf.voters.length + 2 + 4 * m.conf.learners.length;
}

/** Exact body size of one message. */
export function raftBodySize(msg: Message): number {
  switch (msg.type) {
    case MsgType.PreVote:
      return COMMON_BYTES + 16;
    case MsgType.Vote:
      return COMMON_BYTES + 17;
    case MsgType.PreVoteResp:
    case MsgType.VoteResp:
      return COMMON_BYTES + 1;
    case MsgType.Append: {
      let n = COMMON_BYTES + 28;
      for (const e of msg.entries) n += ENTRY_OVERHEAD + e.data.length;
      return n;
    }
    case MsgType.AppendResp:
      return COMMON_BYTES + 25 + (msg.blank ? 1 : 0);
    case MsgType.Heartbeat:
      return COMMON_BYTES + 16 + (msg.quiet ? 1 : 0);
    case MsgType.HeartbeatResp:
      return COMMON_BYTES + 8 + (msg.blank ? 1 : 0);
    case MsgType.Snapshot:
      return COMMON_BYTES + metaSize(msg.meta) + 4 + 9 + msg.data.length;
    case MsgType.SnapshotResp:
      return COMMON_BYTES + metaSize(msg.meta) + 4 + 5;
    case MsgType.TimeoutNow:
      return COMMON_BYTES;
    case MsgType.ReadIndex:
      return COMMON_BYTES + 4 + msg.ctx.length;
    case MsgType.ReadIndexResp:
      return COMMON_BYTES + 8 + 4 + msg.ctx.length;
  }
}

function node(w: Writer, id: NodeId): void {
  if (id >>> 0 !== id) throw new RangeError(`node id out of u32 range: ${id}`);
  w.u32(id);
}

function writeIds(w: Writer, ids: readonly NodeId[]): void {
  if (ids.length > U16_MAX) throw new RangeError('too many ids in a configuration');
  w.u16(ids.length);
  for (const id of ids) node(w, id);
}

function writeMeta(w: Writer, m: SnapshotMeta): void {
  w.u64(m.index);
  w.u64(m.term);
  writeIds(w, m.conf.voters);
  writeIds(w, m.conf.learners);
}

function writeBody(w: Writer, msg: Message): void {
  node(w, msg.from);
  node(w, msg.to);
  w.u64(msg.term);
  switch (msg.type) {
    case MsgType.PreVote:
      w.u64(msg.lastIndex);
      w.u64(msg.lastTerm);
      return;
    case MsgType.Vote:
      w.u64(msg.lastIndex);
      w.u64(msg.lastTerm);
      w.bool(msg.transfer);
      return;
    case MsgType.PreVoteResp:
    case MsgType.VoteResp:
      w.bool(msg.reject);
      return;
    case MsgType.Append: {
      w.u64(msg.prevIndex);
      w.u64(msg.prevTerm);
      w.u64(msg.commit);
      w.u32(msg.entries.length);
      // Indexes are implied (prevIndex+1, +2, ...): 8 bytes per entry saved, and a non-contiguous
      // append is a core bug we refuse to put on the wire.
      let index = msg.prevIndex;
      for (const e of msg.entries) {
        if (e.index !== ++index) throw new RangeError(`append entries not contiguous at ${e.index}, expected ${index}`);
        w.u64(e.term);
        w.u8(e.type);
        w.bytes32(e.data);
      }
      return;
    }
    case MsgType.AppendResp:
      w.u64(msg.index);
      w.bool(msg.reject);
      w.u64(msg.hintIndex);
      w.u64(msg.hintTerm);
      // Protocol 4's tail, only when set: a peer of an older protocol never sees it (peers.ts strips it).
      if (msg.blank) w.u8(ANSWER_BLANK);
      return;
    case MsgType.Heartbeat:
      w.u64(msg.commit);
      w.u64(msg.round);
      // Protocol 2's tail, only when set: a protocol 1 peer never sees it (peers.ts strips it).
      if (msg.quiet) w.u8(HEARTBEAT_QUIET);
      return;
    case MsgType.HeartbeatResp:
      w.u64(msg.round);
      if (msg.blank) w.u8(ANSWER_BLANK);
      return;
    case MsgType.Snapshot:
      writeMeta(w, msg.meta);
      w.u32(msg.transfer);
      if (!(msg.seq >= 0)) throw new RangeError(`snapshot chunk seq ${msg.seq}`);
      w.i32(msg.seq);
      w.bool(msg.last);
      w.bytes32(msg.data);
      return;
    case MsgType.SnapshotResp:
      writeMeta(w, msg.meta);
      w.u32(msg.transfer);
      w.i32(msg.seq);
      w.bool(msg.done);
      return;
    case MsgType.TimeoutNow:
      return;
    case MsgType.ReadIndex:
      w.bytes32(msg.ctx);
      return;
    case MsgType.ReadIndexResp:
      w.u64OrNone(msg.index);
      w.bytes32(msg.ctx);
      return;
  }
}

/** One message, one frame. Raft frames are one-way: requestId is 0 unless a caller wants a tag. */
export function encodeRaft(msg: Message, requestId = 0): Buffer {
  const w = allocFrame(raftFrameType(msg), requestId, raftBodySize(msg));
  writeBody(w, msg);
  return finishFrame(w);
}

export function raftBatchBodySize(msgs: readonly Message[]): number {
  let n = BATCH_COUNT_BYTES;
  for (const m of msgs) n += BATCH_ITEM_OVERHEAD + raftBodySize(m);
  return n;
}

/** Several messages for one peer in one frame (type RaftBatch), in order. */
export function encodeRaftBatch(msgs: readonly Message[], requestId = 0): Buffer {
  if (msgs.length === 0 || msgs.length > U16_MAX) throw new RangeError(`raft batch of ${msgs.length} messages`);
  const sizes = msgs.map(raftBodySize);
  let total = BATCH_COUNT_BYTES;
  for (const s of sizes) total += BATCH_ITEM_OVERHEAD + s;
  const w = allocFrame(FrameType.RaftBatch, requestId, total);
  w.u16(msgs.length);
  for (let i = 0; i < msgs.length; i++) {
    const m = msgs[i]!;
    w.u8(raftFrameType(m));
    w.u32(sizes[i]!);
    writeBody(w, m);
  }
  return finishFrame(w);
}

/**
 * One turn's messages for one peer → as few frames as fit `maxFrameBytes`, order kept. A lone
 * message goes in a plain frame; runs go in batch frames. A single message too big for any frame
 * is a configuration error (maxMsgBytes / snapshotChunkBytes above the frame limit) and throws.
 */
export function encodeRaftMessages(msgs: readonly Message[], maxFrameBytes = DEFAULT_MAX_FRAME_BYTES): Buffer[] {
  const frames: Buffer[] = [];
  const budget = maxFrameBytes - HEADER_BYTES - BATCH_COUNT_BYTES;
  let run: Message[] = [];
  let runBytes = 0;
  const flush = (): void => {
    if (run.length === 1) frames.push(encodeRaft(run[0]!));
    else if (run.length > 1) frames.push(encodeRaftBatch(run));
    run = [];
    runBytes = 0;
  };
  for (const m of msgs) {
    const size = BATCH_ITEM_OVERHEAD + raftBodySize(m);
    if (size > budget) throw new RangeError(`raft message of ${size} bytes exceeds the frame limit ${maxFrameBytes}`);
    if (runBytes + size > budget || run.length === U16_MAX) flush();
    run.push(m);
    runBytes += size;
  }
  flush();
  return frames;
}

// ---- decoding -------------------------------------------------------------------------------

function readNodeIds(r: Reader): NodeId[] {
  const n = r.u16();
  if (n * 4 > r.remaining) r.fail(`${n} ids do not fit`);
  const ids: NodeId[] = [];
  for (let i = 0; i < n; i++) ids.push(r.u32());
  return ids;
}

function readMeta(r: Reader): SnapshotMeta {
  const index = r.u64();
  const term = r.u64();
  const voters = readNodeIds(r);
  const learners = readNodeIds(r);
  const conf: ConfState = { voters, learners };
  return { index, term, conf };
}

function readEntries(r: Reader, prevIndex: number): Entry[] {
  const n = r.u32();
  // Each entry takes at least ENTRY_OVERHEAD bytes: a count the body cannot hold is rejected
  // before any array grows.
  if (n > r.remaining / ENTRY_OVERHEAD) r.fail(`${n} entries do not fit`);
  if (prevIndex + n > Number.MAX_SAFE_INTEGER) r.fail('entry index beyond 2^53');
  const entries: Entry[] = [];
  for (let i = 1; i <= n; i++) {
    const term = r.u64();
    const t = r.u8();
    if (t !== 0 && t !== 1) {
      r.pos--;
      r.fail(`unknown entry type ${t}`);
    }
    const data = r.bytes32();
    entries.push({ index: prevIndex + i, term, type: t as EntryType, data });
  }
  return entries;
}

/** An answer's optional flags byte (ANSWER_BLANK): absent (an older peer's answer) = not blank. */
function readAnswerFlags(r: Reader): boolean {
  if (r.remaining === 0) return false;
  const flags = r.u8();
  if (flags !== ANSWER_BLANK) r.fail(`answer flags 0x${flags.toString(16)}`);
  return true;
}

/** Body fields of one message; the caller checks for trailing bytes. */
function readBody(r: Reader, frameType: number): Message {
  if (!isRaftFrame(frameType)) r.fail(`frame type 0x${frameType.toString(16)} is not a raft message`);
  const type = (frameType - RAFT_BASE) as MsgType;
  const from = r.u32();
  const to = r.u32();
  const term = r.u64();
  switch (type) {
    case MsgType.PreVote:
      return { type, from, to, term, lastIndex: r.u64(), lastTerm: r.u64() };
    case MsgType.Vote:
      return { type, from, to, term, lastIndex: r.u64(), lastTerm: r.u64(), transfer: r.bool() };
    case MsgType.PreVoteResp:
    case MsgType.VoteResp:
      return { type, from, to, term, reject: r.bool() };
    case MsgType.Append: {
      const prevIndex = r.u64();
      const prevTerm = r.u64();
      const commit = r.u64();
      const entries = readEntries(r, prevIndex);
      return { type, from, to, term, prevIndex, prevTerm, entries, commit };
    }
    case MsgType.AppendResp: {
      const resp: AppendRespMsg = { type, from, to, term, index: r.u64(), reject: r.bool(), hintIndex: r.u64(), hintTerm: r.u64() };
      if (readAnswerFlags(r)) resp.blank = true;
      return resp;
    }
    case MsgType.Heartbeat: {
      const hb: HeartbeatMsg = { type, from, to, term, commit: r.u64(), round: r.u64() };
      if (r.remaining > 0) {
        const flags = r.u8();
        if (flags !== HEARTBEAT_QUIET) r.fail(`heartbeat flags 0x${flags.toString(16)}`);
        hb.quiet = true;
      }
      return hb;
    }
    case MsgType.HeartbeatResp: {
      const resp: HeartbeatRespMsg = { type, from, to, term, round: r.u64() };
      if (readAnswerFlags(r)) resp.blank = true;
      return resp;
    }
    case MsgType.Snapshot: {
      const meta = readMeta(r);
      const transfer = r.u32();
      const seq = r.i32();
      if (seq < 0) r.fail(`snapshot chunk seq ${seq}`);
      return { type, from, to, term, meta, transfer, seq, last: r.bool(), data: r.bytes32() };
    }
    case MsgType.SnapshotResp: {
      const meta = readMeta(r);
      const transfer = r.u32();
      const seq = r.i32();
      if (seq < -1) r.fail(`snapshot ack seq ${seq}`);
      return { type, from, to, term, meta, transfer, seq, done: r.bool() };
    }
    case MsgType.TimeoutNow:
      return { type, from, to, term };
    case MsgType.ReadIndex:
      return { type, from, to, term, ctx: r.bytes32() };
    case MsgType.ReadIndexResp: {
      const index = r.u64OrNone();
      return { type, from, to, term, ctx: r.bytes32(), index };
    }
  }
}

/** Decodes a single-message Raft frame body. Throws BadRequestError (errors.ts) only. */
export function decodeRaft(frameType: number, body: Uint8Array): Message {
  const r = new Reader(body, 'raft');
  const msg = readBody(r, frameType);
  r.done();
  return msg;
}

export function decodeRaftBatch(body: Uint8Array): Message[] {
  const r = new Reader(body, 'raft batch');
  const n = r.u16();
  if (n === 0) r.fail('empty batch');
  if (n > r.remaining / (BATCH_ITEM_OVERHEAD + COMMON_BYTES)) r.fail(`${n} messages do not fit`);
  const msgs: Message[] = [];
  for (let i = 0; i < n; i++) {
    const type = r.u8();
    // A sub-reader bounds each message by its declared length, so one bad length cannot make
    // the next message parse from the wrong offset.
    const sub = new Reader(r.raw(r.u32()), `raft batch item ${i}`);
    msgs.push(readBody(sub, type));
    sub.done();
  }
  r.done();
  return msgs;
}

/** Any Raft-carrying frame (single or batch) → its messages. */
export function decodeRaftFrame(frameType: number, body: Uint8Array): Message[] {
  if (frameType === FrameType.RaftBatch) return decodeRaftBatch(body);
  return [decodeRaft(frameType, body)];
}
