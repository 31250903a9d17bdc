// Native client protocol: requests (0x01–0x3F) and responses (0x80–0xFF). Layouts are in
// docs/protocol.md. Writes start with clientId u64 + seq u64 at body offset 0, so a tracer or the
// session table can find them without parsing the rest. Decoding is strict and throws only
// BadRequestError: unknown type, bad flag byte, a length running past the body, trailing bytes.

import type { Role } from '../raft/types.ts';
import { Reader, U32_MAX, utf8Size, type Writer } from './bytes.ts';
import { BadRequestError } from './errors.ts';
import type {
  BatchOp,
  Consistency,
  ErrorCodeName,
  KeyValue,
  Request,
  Response,
  StatusInfo,
  WireError,
  WriteId,
} from './client-types.ts';
import { ErrorCode } from './client-types.ts';
import { allocFrame, DEFAULT_MAX_FRAME_BYTES, finishFrame, HEADER_BYTES } from './frame.ts';
import { FrameType } from './frame-types.ts';

const WRITE_ID_BYTES = 16;
const KEY_OVERHEAD = 2;
const VALUE_OVERHEAD = 4;

const BATCH_PUT = 1;
const BATCH_DELETE = 2;
/** A STATUS body's one byte: the client reads STATUS_INFO's flags byte (absent: an empty body). */
const STATUS_WANTS_FLAGS = 1;
/** STATUS_INFO's flags: the replica is blank (StatusInfo.blank). */
const STATUS_BLANK = 1;

const REQUEST_TYPE = {
  ping: FrameType.Ping,
  status: FrameType.Status,
  get: FrameType.Get,
  put: FrameType.Put,
  delete: FrameType.Delete,
  cas: FrameType.Cas,
  scan: FrameType.Scan,
  batch: FrameType.Batch,
  count: FrameType.Count,
} as const satisfies Record<Request['op'], number>;

export function requestFrameType(req: Request): number {
  return REQUEST_TYPE[req.op];
}

function consistencyByte(c: Consistency): number {
  return c === 'stale' ? 1 : 0;
}

function readConsistency(r: Reader): Consistency {
  const b = r.u8();
  if (b === 0) return 'linearizable';
  if (b === 1) return 'stale';
  r.pos--;
  return r.fail(`unknown consistency ${b}`);
}

function optSize(v: Uint8Array | null, overhead: number): number {
  return 1 + (v === null ? 0 : overhead + v.length);
}

/** Room for what wraps a request body on its way into the log: a FORWARD header, a write entry's header, a Raft append around one entry. */
const ENVELOPE_BYTES = 1024;

/**
 * The largest request body the write path takes. It still fits one frame once relayed to the
 * leader and once replicated as a log entry. A door can build a bigger body from a smaller message
 * of its own protocol (protobuf spends fewer bytes per batch op), so this is checked before a
 * request is proposed or sent on, not only by the frame decoder.
 */
export const MAX_REQUEST_BODY_BYTES = DEFAULT_MAX_FRAME_BYTES - HEADER_BYTES - ENVELOPE_BYTES;

/**
 * The longest key a server can store: LMDB's cap (MAX_STORABLE_KEY_BYTES in src/storage/limits.ts,
 * which no configured limit may exceed; a test keeps the two equal). The client refuses longer keys
 * before sending them. The frame format itself carries keys of up to 65,535 bytes.
 */
export const MAX_KEY_BYTES = 4026;

/**
 * The largest value any server can be configured to take (`--max-value-bytes` is at most this; the
 * default is 1 MiB). A client that does not know a server's setting can still refuse a longer value
 * before sending it (the kvs command does).
 */
export const MAX_VALUE_BYTES = 4 << 20;

/**
 * A scan page holds at most this many bytes of keys and values (but always one pair): with up to
 * 10,000 pairs' framing and one more pair of the largest size it still fits one frame. A page can
 * therefore be shorter than the limit asked for; `more` says where to go on.
 */
export const SCAN_PAGE_BYTES = 2 * 1024 * 1024;

/**
 * Most operations in one batch. Every replica applies a batch's share of its group in one turn of
 * its event loop: 50,000 puts stalled a host process for 0.35 s on this 2-core machine, long enough
 * on a loaded one for elections. (etcd refuses transactions over 128 operations by default.)
 */
export const MAX_BATCH_OPS = 10_000;

/** The answer to a batch of more than MAX_BATCH_OPS operations, or undefined. */
export function batchTooLarge(req: Request): WireError | undefined {
  if (req.op !== 'batch' || req.ops.length <= MAX_BATCH_OPS) return undefined;
  return { code: 'TOO_LARGE', message: tooManyOps(req.ops.length, MAX_BATCH_OPS) };
}

function tooManyOps(n: number, max: number): string {
  return `batch of ${n} operations exceeds the limit of ${max} (send it in parts)`;
}

/** The answer to a request over MAX_REQUEST_BODY_BYTES. */
export function requestTooLarge(bodyBytes: number): WireError {
  return { code: 'TOO_LARGE', message: `request of ${bodyBytes} bytes exceeds the limit of ${MAX_REQUEST_BODY_BYTES} bytes (send fewer or smaller operations at once)` };
}

export function requestBodySize(req: Request): number {
  switch (req.op) {
    case 'ping':
      return 0;
    case 'status':
      return req.flags ? 1 : 0;
    case 'count':
      return 1;
    case 'get':
      return 1 + KEY_OVERHEAD + req.key.length;
    case 'put':
      return WRITE_ID_BYTES + KEY_OVERHEAD + req.key.length + VALUE_OVERHEAD + req.value.length;
    case 'delete':
      return WRITE_ID_BYTES + KEY_OVERHEAD + req.key.length;
    case 'cas':
      return (
        WRITE_ID_BYTES +
        KEY_OVERHEAD +
        req.key.length +
        optSize(req.expected, VALUE_OVERHEAD) +
        optSize(req.value, VALUE_OVERHEAD)
      );
    case 'scan':
      return 1 + 4 + KEY_OVERHEAD + req.start.length + optSize(req.end, KEY_OVERHEAD);
    case 'batch': {
      let n = WRITE_ID_BYTES + 4;
      for (const o of req.ops) {
        n += 1 + KEY_OVERHEAD + o.key.length;
        if (o.op === 'put') n += VALUE_OVERHEAD + o.value.length;
      }
      return n;
    }
  }
}

function writeId(w: Writer, id: WriteId): void {
  w.big64(id.clientId);
  w.u64(id.seq);
}

function writeOpt32(w: Writer, v: Uint8Array | null): void {
  w.bool(v !== null);
  if (v !== null) w.bytes32(v);
}

/** One request → one frame. Throws RangeError on values the format cannot carry (key > 64 KiB). */
export function encodeRequest(requestId: number, req: Request): Buffer {
  const w = allocFrame(REQUEST_TYPE[req.op], requestId, requestBodySize(req));
  switch (req.op) {
    case 'ping':
      break;
    case 'status':
      if (req.flags) w.u8(STATUS_WANTS_FLAGS);
      break;
    case 'get':
      w.u8(consistencyByte(req.consistency));
      w.bytes16(req.key);
      break;
    case 'count':
      w.u8(consistencyByte(req.consistency));
      break;
    case 'put':
      writeId(w, req);
      w.bytes16(req.key);
      w.bytes32(req.value);
      break;
    case 'delete':
      writeId(w, req);
      w.bytes16(req.key);
      break;
    case 'cas':
      writeId(w, req);
      w.bytes16(req.key);
      writeOpt32(w, req.expected);
      writeOpt32(w, req.value);
      break;
    case 'scan':
      if (req.limit >>> 0 !== req.limit) throw new RangeError(`scan limit ${req.limit}`);
      w.u8(consistencyByte(req.consistency));
      w.u32(req.limit);
      w.bytes16(req.start);
      w.bool(req.end !== null);
      if (req.end !== null) w.bytes16(req.end);
      break;
    case 'batch':
      if (req.ops.length === 0) throw new RangeError('batch needs at least one op');
      writeId(w, req);
      w.u32(req.ops.length);
      for (const o of req.ops) {
        w.u8(o.op === 'put' ? BATCH_PUT : BATCH_DELETE);
        w.bytes16(o.key);
        if (o.op === 'put') w.bytes32(o.value);
      }
      break;
  }
  return finishFrame(w);
}

function readWriteId(r: Reader): WriteId {
  const clientId = r.big64();
  const seq = r.u64();
  return { clientId, seq };
}

function readOpt32(r: Reader): Uint8Array | null {
  return r.bool() ? r.bytes32() : null;
}

function readBatchOps(r: Reader, maxOps: number): BatchOp[] {
  const n = r.u32();
  if (n === 0) r.fail('empty batch');
  // The smallest op is kind + empty key (3 bytes): reject counts the body cannot hold up front.
  if (n > r.remaining / 3) r.fail(`${n} ops do not fit`);
  // Refused from the count, before an object per op: 4 MiB of empty ops is 1.4M of them, which
  // took 3-4 s of a replica's event loop to decode, only to be refused (found by fuzzing).
  if (n > maxOps) throw new BadRequestError(tooManyOps(n, maxOps), 'TOO_LARGE');
  const ops: BatchOp[] = [];
  for (let i = 0; i < n; i++) {
    const kind = r.u8();
    if (kind === BATCH_PUT) {
      const key = r.bytes16();
      ops.push({ op: 'put', key, value: r.bytes32() });
    } else if (kind === BATCH_DELETE) {
      ops.push({ op: 'delete', key: r.bytes16() });
    } else {
      r.pos--;
      r.fail(`unknown batch op ${kind}`);
    }
  }
  return ops;
}

/**
 * A client request frame's body → Request. Throws BadRequestError only. Doors pass `maxBatchOps`
 * (MAX_BATCH_OPS) so a batch over it is refused TOO_LARGE from its count; the log's replay
 * decodes what it once accepted, without a limit.
 */
export function decodeRequest(type: number, body: Uint8Array, opts: { maxBatchOps?: number } = {}): Request {
  const r = new Reader(body, 'request');
  let req: Request;
  switch (type) {
    case FrameType.Ping:
      req = { op: 'ping' };
      break;
    case FrameType.Status:
      req = { op: 'status' };
      if (r.remaining > 0) {
        const asked = r.u8();
        if (asked !== STATUS_WANTS_FLAGS) r.fail(`status request byte 0x${asked.toString(16)}`);
        req.flags = true;
      }
      break;
    case FrameType.Get: {
      const consistency = readConsistency(r);
      req = { op: 'get', key: r.bytes16(), consistency };
      break;
    }
    case FrameType.Put: {
      const { clientId, seq } = readWriteId(r);
      const key = r.bytes16();
      req = { op: 'put', clientId, seq, key, value: r.bytes32() };
      break;
    }
    case FrameType.Delete: {
      const { clientId, seq } = readWriteId(r);
      req = { op: 'delete', clientId, seq, key: r.bytes16() };
      break;
    }
    case FrameType.Cas: {
      const { clientId, seq } = readWriteId(r);
      const key = r.bytes16();
      const expected = readOpt32(r);
      req = { op: 'cas', clientId, seq, key, expected, value: readOpt32(r) };
      break;
    }
    case FrameType.Scan: {
      const consistency = readConsistency(r);
      const limit = r.u32();
      const start = r.bytes16();
      const end = r.bool() ? r.bytes16() : null;
      req = { op: 'scan', start, end, limit, consistency };
      break;
    }
    case FrameType.Batch: {
      const { clientId, seq } = readWriteId(r);
      req = { op: 'batch', clientId, seq, ops: readBatchOps(r, opts.maxBatchOps ?? Infinity) };
      break;
    }
    case FrameType.Count:
      req = { op: 'count', consistency: readConsistency(r) };
      break;
    default:
      return r.fail(`unknown request type 0x${type.toString(16).padStart(2, '0')}`);
  }
  r.done();
  return req;
}

// ---- responses ------------------------------------------------------------------------------

const ROLES: readonly Role[] = ['follower', 'pre-candidate', 'candidate', 'leader'];

const ERROR_NAMES = new Map<number, ErrorCodeName>(
  Object.entries(ErrorCode).map(([name, code]) => [code, name as ErrorCodeName]),
);

/** Which frame type carries a response. */
export function responseFrameType(res: Response): number {
  switch (res.kind) {
    case 'ok':
      return FrameType.Ok;
    case 'value':
      return FrameType.Value;
    case 'cas':
      return FrameType.CasResult;
    case 'scan':
      return FrameType.ScanPage;
    case 'status':
      return FrameType.StatusInfo;
    case 'count':
      return FrameType.KeyCount;
    case 'error':
      return FrameType.Error;
  }
}

export function encodeResponse(requestId: number, res: Response): Buffer {
  switch (res.kind) {
    case 'ok':
      return finishFrame(allocFrame(FrameType.Ok, requestId, 0));
    case 'value': {
      const w = allocFrame(FrameType.Value, requestId, optSize(res.value, VALUE_OVERHEAD));
      writeOpt32(w, res.value);
      return finishFrame(w);
    }
    case 'cas': {
      const w = allocFrame(FrameType.CasResult, requestId, 1 + optSize(res.current, VALUE_OVERHEAD));
      w.bool(res.ok);
      writeOpt32(w, res.current);
      return finishFrame(w);
    }
    case 'scan':
      return encodeScanPage(requestId, res.items, res.more);
    case 'status':
      return encodeStatus(requestId, res.info);
    case 'count': {
      const w = allocFrame(FrameType.KeyCount, requestId, 8);
      w.u64(res.count);
      return finishFrame(w);
    }
    case 'error':
      return encodeError(requestId, res.error);
  }
}

function encodeScanPage(requestId: number, items: KeyValue[], more: Uint8Array | null): Buffer {
  if (items.length > U32_MAX) throw new RangeError('scan page too long');
  let n = 4 + optSize(more, KEY_OVERHEAD);
  for (const it of items) n += KEY_OVERHEAD + it.key.length + VALUE_OVERHEAD + it.value.length;
  const w = allocFrame(FrameType.ScanPage, requestId, n);
  w.u32(items.length);
  for (const it of items) {
    w.bytes16(it.key);
    w.bytes32(it.value);
  }
  w.bool(more !== null);
  if (more !== null) w.bytes16(more);
  return finishFrame(w);
}

function encodeStatus(requestId: number, s: StatusInfo): Buffer {
  const role = ROLES.indexOf(s.role);
  if (role < 0) throw new RangeError(`role ${s.role}`);
  const addr = utf8Size(s.leaderAddr);
  const w = allocFrame(FrameType.StatusInfo, requestId, 4 + 4 + 1 + 8 + 4 + 2 + addr + 8 + 8 + 8 + (s.blank === undefined ? 0 : 1));
  w.u32(s.replicaId);
  w.u32(s.groupId);
  w.u8(role);
  w.u64(s.term);
  w.u32(s.leaderId);
  w.str16(s.leaderAddr, addr);
  w.u64(s.commitIndex);
  w.u64(s.appliedIndex);
  w.u64(s.epoch);
  // Only to a client that asked (STATUS with its byte): an earlier client rejects any trailing byte.
  if (s.blank !== undefined) w.u8(s.blank ? STATUS_BLANK : 0);
  return finishFrame(w);
}

function encodeError(requestId: number, e: WireError): Buffer {
  const msg = utf8Size(e.message);
  let extra = 0;
  let addr = 0;
  if (e.code === 'NOT_LEADER') {
    addr = utf8Size(e.leaderAddr);
    extra = 4 + 2 + addr;
  } else if (e.code === 'WRONG_GROUP') {
    extra = 8;
  }
  const w = allocFrame(FrameType.Error, requestId, 2 + 2 + msg + extra);
  w.u16(ErrorCode[e.code]);
  w.str16(e.message, msg);
  if (e.code === 'NOT_LEADER') {
    w.u32(e.leaderId);
    w.str16(e.leaderAddr, addr);
  } else if (e.code === 'WRONG_GROUP') {
    w.u64(e.epoch);
  }
  return finishFrame(w);
}

/** A response frame's body → Response. Throws BadRequestError only. */
export function decodeResponse(type: number, body: Uint8Array): Response {
  const r = new Reader(body, 'response');
  let res: Response;
  switch (type) {
    case FrameType.Ok:
      res = { kind: 'ok' };
      break;
    case FrameType.Value:
      res = { kind: 'value', value: readOpt32(r) };
      break;
    case FrameType.CasResult: {
      const ok = r.bool();
      res = { kind: 'cas', ok, current: readOpt32(r) };
      break;
    }
    case FrameType.ScanPage:
      res = readScanPage(r);
      break;
    case FrameType.StatusInfo:
      res = { kind: 'status', info: readStatus(r) };
      break;
    case FrameType.KeyCount:
      res = { kind: 'count', count: r.u64() };
      break;
    case FrameType.Error:
      res = { kind: 'error', error: readError(r) };
      break;
    default:
      return r.fail(`unknown response type 0x${type.toString(16).padStart(2, '0')}`);
  }
  r.done();
  return res;
}

function readScanPage(r: Reader): Response {
  const n = r.u32();
  // The smallest item is an empty key and empty value (6 bytes).
  if (n > r.remaining / 6) r.fail(`${n} items do not fit`);
  const items: KeyValue[] = [];
  for (let i = 0; i < n; i++) {
    const key = r.bytes16();
    items.push({ key, value: r.bytes32() });
  }
  const more = r.bool() ? r.bytes16() : null;
  return { kind: 'scan', items, more };
}

function readStatus(r: Reader): StatusInfo {
  const replicaId = r.u32();
  const groupId = r.u32();
  const roleByte = r.u8();
  const role = ROLES[roleByte];
  if (role === undefined) {
    r.pos--;
    r.fail(`unknown role ${roleByte}`);
  }
  const term = r.u64();
  const leaderId = r.u32();
  const leaderAddr = r.str16();
  const commitIndex = r.u64();
  const appliedIndex = r.u64();
  const epoch = r.u64();
  const info: StatusInfo = { replicaId, groupId, role, term, leaderId, leaderAddr, commitIndex, appliedIndex, epoch };
  if (r.remaining > 0) {
    const flags = r.u8();
    if ((flags & ~STATUS_BLANK) !== 0) {
      r.pos--;
      r.fail(`status flags 0x${flags.toString(16)}`);
    }
    info.blank = flags === STATUS_BLANK;
  }
  return info;
}

function readError(r: Reader): WireError {
  const codeNum = r.u16();
  const code = ERROR_NAMES.get(codeNum);
  if (code === undefined) {
    r.pos -= 2;
    r.fail(`unknown error code ${codeNum}`);
  }
  const message = r.str16();
  switch (code) {
    case 'NOT_LEADER': {
      const leaderId = r.u32();
      return { code, message, leaderId, leaderAddr: r.str16() };
    }
    case 'WRONG_GROUP':
      return { code, message, epoch: r.u64() };
    default:
      return { code, message };
  }
}
