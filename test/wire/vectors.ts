// The test vectors published in docs/protocol.md. Each is a value plus how to encode and decode it;
// protocol-doc.test.ts checks the document's hex against these, both ways, and
// `node --import tsx test/wire/print-vectors.ts` prints the document's vector section.

import type { Message } from '../../src/raft/types.ts';
import { MsgType } from '../../src/raft/types.ts';
import { decodeChannel, encodeChannel } from '../../src/wire/channel.ts';
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse } from '../../src/wire/client-codec.ts';
import type { Request, Response } from '../../src/wire/client-types.ts';
import { decodeForward, encodeForward } from '../../src/wire/forward.ts';
import { type Frame, HEADER_BYTES } from '../../src/wire/frame.ts';
import { decodeHello, encodeHello, type Hello } from '../../src/wire/hello.ts';
import { decodeMembership, encodeMembership, type MembershipChange } from '../../src/wire/membership-codec.ts';
import { decodeRaftFrame, encodeRaft, encodeRaftBatch } from '../../src/wire/raft-codec.ts';

export interface Vector {
  name: string;
  title: string;
  frame: Buffer;
  /** What decoding the frame must give back. */
  value: unknown;
  decode(f: Frame): unknown;
}

const te = new TextEncoder();
const b = (s: string): Uint8Array => te.encode(s);
const W = { clientId: 0x0123_4567_89ab_cdefn, seq: 1 };

function req(name: string, title: string, requestId: number, r: Request): Vector {
  return { name, title, frame: encodeRequest(requestId, r), value: r, decode: (f) => decodeRequest(f.type, f.body) };
}
function res(name: string, title: string, requestId: number, r: Response): Vector {
  return { name, title, frame: encodeResponse(requestId, r), value: r, decode: (f) => decodeResponse(f.type, f.body) };
}
function raft(name: string, title: string, m: Message): Vector {
  return { name, title, frame: encodeRaft(m), value: [m], decode: (f) => decodeRaftFrame(f.type, f.body) };
}

const base = { from: 1, to: 2, term: 5 };
const meta = { index: 100, term: 4, conf: { voters: [1, 2, 3], learners: [4] } };
const hello: Hello = { version: 1, replicaId: 1, groupId: 2 };
const helloProcess: Hello = { version: 3, replicaId: 2, groupId: 2, process: 0x12_3456_789a_bcde };
const addReplica: MembershipChange = { op: 'add', group: 1, replicaId: 104, address: '127.0.0.1:7013' };
const fwdPut = encodeRequest(0, { op: 'put', ...W, key: b('k'), value: b('v') });

export const vectors: Vector[] = [
  req('ping', 'PING, requestId 1', 1, { op: 'ping' }),
  req('status', 'STATUS, requestId 2', 2, { op: 'status' }),
  req('status-flags', 'STATUS asking for the flags byte, requestId 2', 2, { op: 'status', flags: true }),
  req('get', 'GET "user:42", linearizable, requestId 3', 3, { op: 'get', key: b('user:42'), consistency: 'linearizable' }),
  req('get-stale-empty-key', 'GET of the empty key, stale, requestId 4', 4, { op: 'get', key: new Uint8Array(0), consistency: 'stale' }),
  req('put', 'PUT "k" = "v", clientId 0x0123456789abcdef, seq 1, requestId 5', 5, { op: 'put', ...W, key: b('k'), value: b('v') }),
  req('delete', 'DELETE "k", seq 2, requestId 6', 6, { op: 'delete', ...W, seq: 2, key: b('k') }),
  req('cas-create', 'CAS "k": absent → "v1", seq 3, requestId 7', 7, { op: 'cas', ...W, seq: 3, key: b('k'), expected: null, value: b('v1') }),
  req('cas-delete', 'CAS "k": "v1" → delete, seq 4, requestId 8', 8, { op: 'cas', ...W, seq: 4, key: b('k'), expected: b('v1'), value: null }),
  req('scan', 'SCAN ["a", "b"), limit 100, stale, requestId 9', 9, { op: 'scan', start: b('a'), end: b('b'), limit: 100, consistency: 'stale' }),
  req('scan-all', 'SCAN from the start to the end, server default limit, linearizable, requestId 10', 10, {
    op: 'scan',
    start: new Uint8Array(0),
    end: null,
    limit: 0,
    consistency: 'linearizable',
  }),
  req('batch', 'BATCH put "a"="1", delete "b", seq 5, requestId 11', 11, {
    op: 'batch',
    ...W,
    seq: 5,
    ops: [
      { op: 'put', key: b('a'), value: b('1') },
      { op: 'delete', key: b('b') },
    ],
  }),

  req('count', 'COUNT, linearizable, requestId 14', 14, { op: 'count', consistency: 'linearizable' }),

  res('ok', 'OK, requestId 5', 5, { kind: 'ok' }),
  res('value', 'VALUE "v", requestId 3', 3, { kind: 'value', value: b('v') }),
  res('value-absent', 'VALUE absent (key not found), requestId 3', 3, { kind: 'value', value: null }),
  res('cas-failed', 'CAS_RESULT failed, current value "v2", requestId 7', 7, { kind: 'cas', ok: false, current: b('v2') }),
  res('scan-page', 'SCAN_PAGE of "a"="1", more from "a\\0", requestId 9', 9, {
    kind: 'scan',
    items: [{ key: b('a'), value: b('1') }],
    more: b('a\0'),
  }),
  res('status-info', 'STATUS_INFO of a leader, requestId 2', 2, {
    kind: 'status',
    info: {
      replicaId: 1,
      groupId: 2,
      role: 'leader',
      term: 5,
      leaderId: 1,
      leaderAddr: '127.0.0.1:7001',
      commitIndex: 10,
      appliedIndex: 9,
      epoch: 3,
    },
  }),
  res('status-info-blank', 'STATUS_INFO of a blank follower, to a STATUS asking for flags, requestId 2', 2, {
    kind: 'status',
    info: {
      replicaId: 3,
      groupId: 2,
      role: 'follower',
      term: 5,
      leaderId: 1,
      leaderAddr: '127.0.0.1:7001',
      commitIndex: 10,
      appliedIndex: 0,
      epoch: 0,
      blank: true,
    },
  }),
  res('key-count', 'KEY_COUNT 1000000, requestId 14', 14, { kind: 'count', count: 1_000_000 }),
  res('error-not-leader', 'ERROR NOT_LEADER, leader 2 at 127.0.0.1:7002, requestId 5', 5, {
    kind: 'error',
    error: { code: 'NOT_LEADER', message: '', leaderId: 2, leaderAddr: '127.0.0.1:7002' },
  }),
  res('error-wrong-group', 'ERROR WRONG_GROUP, epoch 7, requestId 5', 5, { kind: 'error', error: { code: 'WRONG_GROUP', message: '', epoch: 7 } }),
  res('error-too-large', 'ERROR TOO_LARGE "value > 1 MiB", requestId 5', 5, { kind: 'error', error: { code: 'TOO_LARGE', message: 'value > 1 MiB' } }),
  res('error-timeout', 'ERROR TIMEOUT, requestId 5', 5, { kind: 'error', error: { code: 'TIMEOUT', message: '' } }),
  res('error-unavailable', 'ERROR UNAVAILABLE, requestId 5', 5, { kind: 'error', error: { code: 'UNAVAILABLE', message: '' } }),
  res('error-bad-request', 'ERROR BAD_REQUEST "unknown op", requestId 12', 12, {
    kind: 'error',
    error: { code: 'BAD_REQUEST', message: 'unknown op' },
  }),

  {
    name: 'membership-add',
    title: 'MEMBERSHIP add replica 104 at 127.0.0.1:7013 to group 1, requestId 13',
    frame: encodeMembership(13, addReplica),
    value: addReplica,
    decode: (f) => decodeMembership(f.body),
  },
  {
    name: 'hello',
    title: 'HELLO from replica 1 of group 2, version 1',
    frame: encodeHello(hello),
    value: hello,
    decode: (f) => decodeHello(f.body),
  },
  {
    name: 'hello-process',
    title: 'HELLO answer from replica 2 of group 2, version 3, process 0x123456789abcde (to a dialer of version 3)',
    frame: encodeHello(helloProcess),
    value: helloProcess,
    decode: (f) => decodeHello(f.body),
  },
  {
    name: 'forward',
    title: 'FORWARD of the PUT above, hops 1, requestId 77',
    frame: encodeForward(77, { type: fwdPut[4]!, hops: 1, body: fwdPut.subarray(HEADER_BYTES) }),
    value: { type: 0x04, hops: 1, request: { op: 'put', ...W, key: b('k'), value: b('v') } },
    decode: (f) => {
      const fw = decodeForward(f.body);
      return { type: fw.type, hops: fw.hops, request: decodeRequest(fw.type, fw.body) };
    },
  },
  raft('raft-prevote', 'PreVote 1→2, term 5, last 10/4', { ...base, type: MsgType.PreVote, lastIndex: 10, lastTerm: 4 }),
  raft('raft-prevote-resp', 'PreVoteResp 2→1, term 5, granted', { ...base, from: 2, to: 1, type: MsgType.PreVoteResp, reject: false }),
  raft('raft-vote', 'Vote 1→2, term 5, last 10/4, transfer', { ...base, type: MsgType.Vote, lastIndex: 10, lastTerm: 4, transfer: true }),
  raft('raft-vote-resp', 'VoteResp 2→1, term 5, rejected', { ...base, from: 2, to: 1, type: MsgType.VoteResp, reject: true }),
  raft('raft-append', 'Append 1→2, term 5, prev 10/4, commit 9, entries 11 (normal "a") and 12 (conf, empty)', {
    ...base,
    type: MsgType.Append,
    prevIndex: 10,
    prevTerm: 4,
    entries: [
      { index: 11, term: 5, type: 0, data: b('a') },
      { index: 12, term: 5, type: 1, data: new Uint8Array(0) },
    ],
    commit: 9,
  }),
  raft('raft-append-heartbeat-like', 'Append with no entries, prev 12/5, commit 12', {
    ...base,
    type: MsgType.Append,
    prevIndex: 12,
    prevTerm: 5,
    entries: [],
    commit: 12,
  }),
  raft('raft-append-resp', 'AppendResp 2→1, rejected at 12, hint 8/3', {
    ...base,
    from: 2,
    to: 1,
    type: MsgType.AppendResp,
    index: 12,
    reject: true,
    hintIndex: 8,
    hintTerm: 3,
  }),
  raft('raft-append-resp-blank', 'AppendResp 2→1, accepted through 12, the sender is blank (protocol 4)', {
    ...base,
    from: 2,
    to: 1,
    type: MsgType.AppendResp,
    index: 12,
    reject: false,
    hintIndex: 0,
    hintTerm: 0,
    blank: true,
  }),
  raft('raft-heartbeat', 'Heartbeat 1→2, commit 12, round 3', { ...base, type: MsgType.Heartbeat, commit: 12, round: 3 }),
  raft('raft-heartbeat-quiet', 'Heartbeat 1→2, commit 12, round 4, the leader is quiet (protocol 2)', { ...base, type: MsgType.Heartbeat, commit: 12, round: 4, quiet: true }),
  raft('raft-heartbeat-resp', 'HeartbeatResp 2→1, round 3', { ...base, from: 2, to: 1, type: MsgType.HeartbeatResp, round: 3 }),
  raft('raft-heartbeat-resp-blank', 'HeartbeatResp 2→1, round 3, the sender is blank (protocol 4)', { ...base, from: 2, to: 1, type: MsgType.HeartbeatResp, round: 3, blank: true }),
  raft('raft-snapshot', 'Snapshot chunk 0 (last) of image 100/4, voters 1,2,3, learner 4, data "img"', {
    ...base,
    type: MsgType.Snapshot,
    meta,
    transfer: 1,
    seq: 0,
    data: b('img'),
    last: true,
  }),
  raft('raft-snapshot-resp', 'SnapshotResp: nothing received, start again (seq -1)', {
    ...base,
    from: 2,
    to: 1,
    type: MsgType.SnapshotResp,
    meta,
    transfer: 1,
    seq: -1,
    done: false,
  }),
  raft('raft-timeout-now', 'TimeoutNow 1→2, term 5', { ...base, type: MsgType.TimeoutNow }),
  raft('raft-read-index', 'ReadIndex 2→1, ctx "r1"', { ...base, from: 2, to: 1, type: MsgType.ReadIndex, ctx: b('r1') }),
  raft('raft-read-index-resp', 'ReadIndexResp 1→2, ctx "r1", cannot serve (index -1)', {
    ...base,
    type: MsgType.ReadIndexResp,
    ctx: b('r1'),
    index: -1,
  }),
  (() => {
    const msgs: Message[] = [
      { ...base, type: MsgType.Heartbeat, commit: 12, round: 4 },
      { ...base, type: MsgType.TimeoutNow },
    ];
    return {
      name: 'raft-batch',
      title: 'RAFT_BATCH: Heartbeat then TimeoutNow, 1→2',
      frame: encodeRaftBatch(msgs),
      value: msgs,
      decode: (f: Frame) => decodeRaftFrame(f.type, f.body),
    };
  })(),
  (() => {
    const m: Message = { from: 1, to: 5, term: 5, type: MsgType.TimeoutNow };
    return {
      name: 'channel',
      title: 'CHANNEL of group 7, 1→5, carrying TimeoutNow 1→5, term 5',
      frame: encodeChannel({ group: 7, from: 1, to: 5 }, encodeRaft(m)),
      value: { group: 7, from: 1, to: 5, type: 0x4b, requestId: 0, inner: [m] },
      decode: (f: Frame) => decodeChanneled(f, (i) => decodeRaftFrame(i.type, i.body)),
    };
  })(),
  (() => {
    const r: Response = { kind: 'error', error: { code: 'UNAVAILABLE', message: '' } };
    return {
      name: 'channel-not-hosted',
      title: 'the answer to the CHANNEL above where replica 5 of group 7 is not hosted: CHANNEL 5→1 carrying ERROR UNAVAILABLE, requestId 0',
      frame: encodeChannel({ group: 7, from: 5, to: 1 }, encodeResponse(0, r)),
      value: { group: 7, from: 5, to: 1, type: 0xff, requestId: 0, inner: r },
      decode: (f: Frame) => decodeChanneled(f, (i) => decodeResponse(i.type, i.body)),
    };
  })(),
];

function decodeChanneled(f: Frame, inner: (i: Frame) => unknown): unknown {
  const c = decodeChannel(f.body);
  return { group: c.group, from: c.from, to: c.to, type: c.frame.type, requestId: c.frame.requestId, inner: inner(c.frame) };
}

/** The hex layout used in the document: header fields on the first line, body 16 bytes a line. */
export function formatHex(frame: Uint8Array): string {
  const h = Buffer.from(frame.buffer, frame.byteOffset, frame.length).toString('hex');
  const pairs = (s: string) => s.match(/../g)?.join(' ') ?? '';
  const lines = [`${pairs(h.slice(0, 8))} | ${pairs(h.slice(8, 10))} | ${pairs(h.slice(10, 18))}`];
  const body = h.slice(18);
  for (let i = 0; i < body.length; i += 32) lines.push(pairs(body.slice(i, i + 32)));
  return lines.join('\n');
}

/** The inverse: every hex pair, ignoring spaces, newlines and "|". */
export function parseHex(text: string): Buffer {
  const clean = text.replace(/[\s|]/g, '');
  if (!/^([0-9a-f]{2})*$/i.test(clean)) throw new Error(`not hex: ${text}`);
  return Buffer.from(clean, 'hex');
}
