// Shared by the wire tests: a seeded PRNG, sample values covering every message and op, and a
// normaliser so decoded views (Buffer) compare equal to the Uint8Arrays they were encoded from.

import type { Entry, Message, SnapshotMeta } from '../../src/raft/types.ts';
import { MsgType } from '../../src/raft/types.ts';
import type { Request, Response } from '../../src/wire/client-types.ts';

/** mulberry32: tiny, fast, good enough to drive a fuzzer; same seed → same run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Rng {
  readonly next: () => number;
  constructor(readonly seed: number) {
    this.next = prng(seed);
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
}

/** WIRE_SEED=<n> replays a run; otherwise a fresh seed each time. */
export function seedFromEnv(): number {
  const s = process.env.WIRE_SEED;
  return s !== undefined ? Number(s) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
}

/** Uint8Array (or Buffer view) → "hex:…", recursively, so deepStrictEqual ignores view types. */
export function norm(v: unknown): unknown {
  if (v instanceof Uint8Array) return `hex:${Buffer.from(v.buffer, v.byteOffset, v.length).toString('hex')}`;
  if (Array.isArray(v)) return v.map(norm);
  if (v !== null && typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) o[k] = norm(x);
    return o;
  }
  return v;
}

export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

const MAX = Number.MAX_SAFE_INTEGER;

export function entries(prevIndex: number, n: number, size: number, term = 3): Entry[] {
  const out: Entry[] = [];
  for (let i = 1; i <= n; i++) {
    out.push({ index: prevIndex + i, term, type: i % 7 === 0 ? 1 : 0, data: new Uint8Array(size).fill(i & 0xff) });
  }
  return out;
}

const meta: SnapshotMeta = { index: 1000, term: 7, conf: { voters: [1, 2, 3], learners: [4] } };
const emptyMeta: SnapshotMeta = { index: 0, term: 0, conf: { voters: [], learners: [] } };

/** Every Raft message type, with edge values. */
export function sampleMessages(): Message[] {
  const b = { from: 1, to: 2, term: 5 };
  return [
    { ...b, type: MsgType.PreVote, lastIndex: 10, lastTerm: 4 },
    { ...b, type: MsgType.PreVoteResp, reject: true },
    { ...b, type: MsgType.Vote, lastIndex: MAX, lastTerm: MAX, transfer: true },
    { ...b, type: MsgType.VoteResp, reject: false },
    { ...b, type: MsgType.Append, prevIndex: 0, prevTerm: 0, entries: [], commit: 0 },
    { ...b, type: MsgType.Append, prevIndex: 41, prevTerm: 3, entries: entries(41, 3, 5), commit: 40 },
    { ...b, type: MsgType.Append, prevIndex: 7, prevTerm: 2, entries: entries(7, 1, 0), commit: 7 },
    { ...b, type: MsgType.Append, prevIndex: 100, prevTerm: 5, entries: entries(100, 2000, 100), commit: 99 },
    { ...b, type: MsgType.AppendResp, index: 44, reject: false, hintIndex: 0, hintTerm: 0 },
    { ...b, type: MsgType.AppendResp, index: 50, reject: true, hintIndex: 30, hintTerm: 2 },
    { ...b, type: MsgType.AppendResp, index: 44, reject: false, hintIndex: 0, hintTerm: 0, blank: true },
    { ...b, type: MsgType.Heartbeat, commit: 44, round: 9 },
    { ...b, type: MsgType.Heartbeat, commit: 44, round: 10, quiet: true },
    { ...b, type: MsgType.HeartbeatResp, round: 9 },
    { ...b, type: MsgType.HeartbeatResp, round: 9, blank: true },
    { ...b, type: MsgType.Snapshot, meta, transfer: 1, seq: 0, data: new Uint8Array(300).fill(7), last: false },
    { ...b, type: MsgType.Snapshot, meta: emptyMeta, transfer: 0xffff_ffff, seq: 12, data: new Uint8Array(0), last: true },
    { ...b, type: MsgType.SnapshotResp, meta, transfer: 1, seq: -1, done: false },
    { ...b, type: MsgType.SnapshotResp, meta, transfer: 7, seq: 4, done: true },
    { ...b, type: MsgType.TimeoutNow },
    { ...b, from: 0xffff_ffff, to: 0, term: 0, type: MsgType.TimeoutNow },
    { ...b, type: MsgType.ReadIndex, ctx: bytes('read-1') },
    { ...b, type: MsgType.ReadIndex, ctx: new Uint8Array(0) },
    { ...b, type: MsgType.ReadIndexResp, ctx: bytes('read-1'), index: 44 },
    { ...b, type: MsgType.ReadIndexResp, ctx: bytes('read-2'), index: -1 },
  ];
}

const w = { clientId: 0x0123_4567_89ab_cdefn, seq: 1 };

/** Every request op, with edge values (empty and maximal keys, absent/delete CAS, big batches). */
export function sampleRequests(): Request[] {
  const maxKey = new Uint8Array(0xffff).fill(0x6b);
  return [
    { op: 'ping' },
    { op: 'status' },
    { op: 'get', key: bytes('user:42'), consistency: 'linearizable' },
    { op: 'get', key: new Uint8Array(0), consistency: 'stale' },
    { op: 'get', key: maxKey, consistency: 'stale' },
    { op: 'put', ...w, key: bytes('k'), value: bytes('v') },
    { op: 'put', clientId: 0xffff_ffff_ffff_ffffn, seq: MAX, key: new Uint8Array(0), value: new Uint8Array(0) },
    { op: 'put', ...w, key: maxKey, value: new Uint8Array(1024 * 1024).fill(1) },
    { op: 'delete', ...w, key: bytes('k') },
    { op: 'cas', ...w, key: bytes('k'), expected: null, value: bytes('new') },
    { op: 'cas', ...w, key: bytes('k'), expected: bytes('old'), value: null },
    { op: 'cas', ...w, key: bytes('k'), expected: bytes('old'), value: bytes('new') },
    { op: 'cas', ...w, key: bytes('k'), expected: null, value: null },
    { op: 'scan', start: new Uint8Array(0), end: null, limit: 0, consistency: 'linearizable' },
    { op: 'scan', start: bytes('a'), end: bytes('b'), limit: 0xffff_ffff, consistency: 'stale' },
    { op: 'count', consistency: 'linearizable' },
    { op: 'count', consistency: 'stale' },
    { op: 'batch', ...w, ops: [{ op: 'put', key: bytes('a'), value: bytes('1') }, { op: 'delete', key: bytes('b') }] },
    {
      op: 'batch',
      ...w,
      ops: Array.from({ length: 10_000 }, (_, i) =>
        i % 3 === 0 ? { op: 'delete' as const, key: bytes(`k${i}`) } : { op: 'put' as const, key: bytes(`k${i}`), value: bytes(`v${i}`) },
      ),
    },
  ];
}

export function sampleResponses(): Response[] {
  return [
    { kind: 'ok' },
    { kind: 'value', value: null },
    { kind: 'value', value: new Uint8Array(0) },
    { kind: 'value', value: new Uint8Array(1024 * 1024).fill(9) },
    { kind: 'cas', ok: true, current: bytes('new') },
    { kind: 'cas', ok: false, current: null },
    { kind: 'scan', items: [], more: null },
    { kind: 'count', count: 0 },
    { kind: 'count', count: MAX },
    {
      kind: 'scan',
      items: [
        { key: bytes('a'), value: bytes('1') },
        { key: new Uint8Array(0), value: new Uint8Array(0) },
      ],
      more: bytes('a\0'),
    },
    {
      kind: 'status',
      info: {
        replicaId: 3,
        groupId: 1,
        role: 'leader',
        term: 9,
        leaderId: 3,
        leaderAddr: '127.0.0.1:7003',
        commitIndex: 100,
        appliedIndex: 99,
        epoch: 4,
      },
    },
    {
      kind: 'status',
      info: {
        replicaId: 1,
        groupId: 0,
        role: 'pre-candidate',
        term: 0,
        leaderId: 0,
        leaderAddr: '',
        commitIndex: 0,
        appliedIndex: 0,
        epoch: 0,
      },
    },
    { kind: 'error', error: { code: 'NOT_LEADER', message: 'not leader', leaderId: 2, leaderAddr: '10.0.0.2:7000' } },
    { kind: 'error', error: { code: 'NOT_LEADER', message: '', leaderId: 0, leaderAddr: '' } },
    { kind: 'error', error: { code: 'WRONG_GROUP', message: 'partition 17 moved', epoch: 12 } },
    { kind: 'error', error: { code: 'TOO_LARGE', message: 'value exceeds 1 MiB' } },
    { kind: 'error', error: { code: 'TIMEOUT', message: '' } },
    { kind: 'error', error: { code: 'UNAVAILABLE', message: 'no quorum' } },
    { kind: 'error', error: { code: 'BAD_REQUEST', message: 'request: 1 trailing bytes at byte 9 — ünïcode' } },
  ];
}
