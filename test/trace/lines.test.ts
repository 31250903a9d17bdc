// Frames → trace lines on synthetic frames: names from the address book and from what the wire
// teaches it (HELLO, Raft from/to), one line per message of a batch, partial and undecodable
// frames, the filters, and both output formats.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EntryType, MsgType, type Entry, type Message } from '../../src/raft/types.ts';
import { AddressBook } from '../../src/trace/address-book.ts';
import { formatSummaryLine, jsonLine, textLine, type TraceSummary } from '../../src/trace/format.ts';
import { LineDecoder, type FrameInput, type TraceLine } from '../../src/trace/lines.ts';
import type { Flow } from '../../src/trace/reassembly.ts';
import type { Endpoint } from '../../src/trace/source.ts';
import { TapSource } from '../../src/trace/tap-source.ts';
import { encodeRequest, encodeResponse } from '../../src/wire/client-codec.ts';
import { encodeForward } from '../../src/wire/forward.ts';
import { encodeHello } from '../../src/wire/hello.ts';
import { encodeRaft, encodeRaftBatch } from '../../src/wire/raft-codec.ts';

const R1: Endpoint = { addr: '127.0.0.1', port: 26001 };
const R2: Endpoint = { addr: '127.0.0.1', port: 26002 };
const R3: Endpoint = { addr: '127.0.0.1', port: 26003 };
/** Replica 1's ephemeral end of its link to replica 2, and a client's. */
const R1_OUT: Endpoint = { addr: '127.0.0.1', port: 45001 };
const R2_OUT: Endpoint = { addr: '127.0.0.1', port: 45002 };
const CLIENT: Endpoint = { addr: '127.0.0.1', port: 45999 };

const book = (): AddressBook =>
  new AddressBook([
    { id: 1, group: 0, address: '127.0.0.1:26001' },
    { id: 2, group: 0, address: '127.0.0.1:26002' },
    { id: 3, group: 0, address: '127.0.0.1:26003' },
  ]);

const flow = (src: Endpoint, dst: Endpoint): Flow => ({ key: `${src.addr}|${src.port}|${dst.addr}|${dst.port}`, src, dst });

/** A captured frame: header parsed from the bytes, body cut to `keep` bytes. */
function input(bytes: Uint8Array, f?: Flow, keep = Infinity, ts = 1_000n): FrameInput {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = v.getUint32(0);
  return { ts, type: v.getUint8(4), requestId: v.getUint32(5), length, bodyPrefix: bytes.subarray(9, 9 + Math.min(length - 5, keep)), ...(f ? { flow: f } : {}) };
}

const entries = (first: number, n: number, term: number): Entry[] =>
  Array.from({ length: n }, (_, i) => ({ index: first + i, term, type: EntryType.Normal, data: new Uint8Array(20).fill(i) }));

const append: Message & { type: typeof MsgType.Append } = { type: MsgType.Append, from: 1, to: 2, term: 5, prevIndex: 9, prevTerm: 4, commit: 8, entries: entries(10, 3, 5) };
const WALL = 1_700_000_000_123_456_789n;

describe('trace lines', () => {
  it('AppendEntries: names, group, term, indexes, entries and bytes', () => {
    const d = new LineDecoder(book());
    const bytes = encodeRaft(append);
    const [line, ...rest] = d.decode(input(bytes, flow(R1_OUT, R2)));
    assert.equal(rest.length, 0);
    assert.ok(line);
    assert.deepEqual(
      { group: line.group, from: line.from, to: line.to, src: line.src, dst: line.dst, msg: line.msg, partial: line.partial, bytes: line.bytes },
      { group: 0, from: 1, to: 2, src: 'r1', dst: 'r2', msg: 'AppendEntries', partial: false, bytes: bytes.length - 9 },
    );
    assert.deepEqual(line.fields, { term: 5, prevIndex: 9, prevTerm: 4, commit: 8, entries: 3, firstIndex: 10, lastIndex: 12 });
    assert.match(textLine(line, WALL), /^\d\d:\d\d:\d\d\.123456 g0 r1 -> r2 AppendEntries term=5 prevIndex=9 prevTerm=4 commit=8 entries=3 index=10\.\.12 bytes=\d+$/);
    assert.deepEqual(JSON.parse(jsonLine(line, WALL)), {
      kind: 'msg',
      ts: '2023-11-14T22:13:20.123456Z',
      group: 0,
      from: 1,
      to: 2,
      msg: 'AppendEntries',
      type: '0x45',
      term: 5,
      prevIndex: 9,
      prevTerm: 4,
      commit: 8,
      entries: 3,
      firstIndex: 10,
      lastIndex: 12,
      bytes: bytes.length - 9,
      partial: false,
    });
    // The Raft message taught the book who the ephemeral end is.
    assert.equal(book().idOf(R1_OUT), undefined);
  });

  it('an empty AppendEntries (heartbeat-like probe) has no index range', () => {
    const [line] = new LineDecoder(book()).decode(input(encodeRaft({ ...append, entries: [] }), flow(R1_OUT, R2)));
    assert.ok(line);
    assert.deepEqual(line.fields, { term: 5, prevIndex: 9, prevTerm: 4, commit: 8, entries: 0 });
    assert.match(textLine(line, WALL), / entries=0 bytes=\d+$/);
  });

  it('elections: PreVote, RequestVote (transfer), their answers, TimeoutNow', () => {
    const d = new LineDecoder(book());
    const msgs: [Message, Endpoint, Endpoint][] = [
      [{ type: MsgType.PreVote, from: 2, to: 3, term: 6, lastIndex: 12, lastTerm: 5 }, R2_OUT, R3],
      [{ type: MsgType.PreVoteResp, from: 3, to: 2, term: 6, reject: false }, { addr: '127.0.0.1', port: 45003 }, R2],
      [{ type: MsgType.Vote, from: 2, to: 3, term: 6, lastIndex: 12, lastTerm: 5, transfer: true }, R2_OUT, R3],
      [{ type: MsgType.VoteResp, from: 3, to: 2, term: 6, reject: true }, { addr: '127.0.0.1', port: 45003 }, R2],
      [{ type: MsgType.TimeoutNow, from: 1, to: 2, term: 5 }, R1_OUT, R2],
    ];
    const lines = msgs.flatMap(([m, s, t]) => d.decode(input(encodeRaft(m), flow(s, t))));
    assert.deepEqual(
      lines.map((l) => [l.src, l.dst, l.msg, l.fields]),
      [
        ['r2', 'r3', 'PreVote', { term: 6, lastIndex: 12, lastTerm: 5 }],
        ['r3', 'r2', 'PreVoteResp', { term: 6, reject: false }],
        ['r2', 'r3', 'RequestVote', { term: 6, lastIndex: 12, lastTerm: 5, transfer: true }],
        ['r3', 'r2', 'RequestVoteResp', { term: 6, reject: true }],
        ['r1', 'r2', 'TimeoutNow', { term: 5 }],
      ],
    );
  });

  it('a RaftBatch yields one line per message, in order', () => {
    const d = new LineDecoder(book());
    const batch = encodeRaftBatch([append, { type: MsgType.Heartbeat, from: 1, to: 2, term: 5, commit: 12, round: 3 }, { type: MsgType.ReadIndex, from: 1, to: 2, term: 5, ctx: new Uint8Array(4) }]);
    const lines = d.decode(input(batch, flow(R1_OUT, R2)));
    assert.deepEqual(
      lines.map((l) => [l.msg, l.batch, l.requestId]),
      [
        ['AppendEntries', { index: 0, count: 3 }, undefined],
        ['Heartbeat', { index: 1, count: 3 }, undefined],
        ['ReadIndex', { index: 2, count: 3 }, undefined],
      ],
    );
    assert.deepEqual(lines[1]?.fields, { term: 5, commit: 12, round: 3 });
    assert.equal(JSON.parse(jsonLine(lines[2]!, WALL)).batch, '3/3');
    assert.deepEqual(d.counters, { frames: 1, messages: 3, lines: 3, hidden: 0, partial: 0, undecodable: 0, unseen: 0 });
  });

  it('a batch cut by the snap length: whole messages decode, the cut one is partial, the rest unseen', () => {
    const d = new LineDecoder(book());
    const hb = { type: MsgType.Heartbeat, from: 1, to: 2, term: 5, commit: 12, round: 3 } as const;
    const batch = encodeRaftBatch([hb, hb, hb, hb]);
    // 2 count + 4×(5 + 32) item bytes: keep the first item, the header and 20 bytes of the second.
    const lines = d.decode(input(batch, flow(R1_OUT, R2), 2 + 37 + 5 + 20));
    assert.deepEqual(
      lines.map((l) => [l.msg, l.partial, l.fields.term, l.fields.round]),
      [
        ['Heartbeat', false, 5, 3],
        ['Heartbeat', true, 5, undefined],
      ],
    );
    assert.equal(d.counters.unseen, 2);
    assert.equal(d.counters.partial, 1);
    assert.match(textLine(lines[1]!, WALL), / partial$/);
  });

  it('an Append cut inside its entries still has every field; cut before the count it is partial', () => {
    const bytes = encodeRaft(append);
    const [whole] = new LineDecoder(book()).decode(input(bytes, flow(R1_OUT, R2), 50));
    assert.equal(whole?.partial, false);
    assert.equal(whole?.fields.lastIndex, 12);
    const [cut] = new LineDecoder(book()).decode(input(bytes, flow(R1_OUT, R2), 30));
    assert.equal(cut?.partial, true);
    assert.deepEqual(cut?.fields, { term: 5, prevIndex: 9 });
    assert.equal(cut?.bytes, bytes.length - 9);
  });

  it('InstallSnapshot chunks: snapshot index and term, chunk number, last', () => {
    const meta = { index: 100, term: 4, conf: { voters: [1, 2, 3], learners: [] } };
    const m = { type: MsgType.Snapshot, from: 1, to: 3, term: 5, meta, transfer: 9, seq: 2, last: true, data: new Uint8Array(50) } as unknown as Message;
    const [line] = new LineDecoder(book()).decode(input(encodeRaft(m), flow(R1_OUT, R3)));
    assert.ok(line);
    assert.equal(line.msg, 'InstallSnapshot');
    assert.equal(line.fields.snapIndex, 100);
    assert.equal(line.fields.snapTerm, 4);
    assert.equal(line.fields.chunk, 2);
    assert.equal(line.fields.last, true);
    assert.equal(line.fields.dataBytes, 50);
    assert.equal('seq' in line.fields, false);
  });

  it('HELLO names the dialing end: a forwarded Put and its answer get replica names and the group', () => {
    const b = new AddressBook([
      { id: 101, group: 1, address: '127.0.0.1:26001' },
      { id: 102, group: 1, address: '127.0.0.1:26002' },
    ]);
    const d = new LineDecoder(b);
    const [hello] = d.decode(input(encodeHello({ version: 1, replicaId: 102, groupId: 1 }), flow(R2_OUT, R1)));
    assert.deepEqual([hello?.src, hello?.dst, hello?.msg, hello?.group, hello?.fields], ['r102', 'r101', 'Hello', 1, { version: 1, replica: 102, group: 1 }]);
    const put = encodeRequest(0, { op: 'put', clientId: 0xabcn, seq: 4, key: new TextEncoder().encode('user:1'), value: new Uint8Array(3) });
    const fwd = encodeForward(7, { type: put[4]!, hops: 1, body: put.subarray(9) });
    const [f] = d.decode(input(fwd, flow(R2_OUT, R1)));
    assert.ok(f);
    assert.deepEqual([f.src, f.dst, f.msg, f.requestId, f.group], ['r102', 'r101', 'Forward(Put)', 7, 1]);
    assert.deepEqual(f.fields, { hops: 1, op: 'Put', client: 'abc', seq: 4, key: '"user:1"', valueBytes: 3 });
    assert.match(textLine(f, WALL), / g1 r102 -> r101 Forward\(Put\) #7 hops=1 client=abc seq=4 key="user:1" valueBytes=3 bytes=\d+$/);
    const [ok] = d.decode(input(encodeResponse(7, { kind: 'ok' }), flow(R1, R2_OUT)));
    assert.deepEqual([ok?.src, ok?.dst, ok?.msg, ok?.requestId], ['r101', 'r102', 'Ok', 7]);
  });

  it('one ephemeral port shared by two links (to different doors) names each link by its own HELLO', () => {
    // Regression (CI, 2026-12-05): Linux hands a recently used ephemeral port to a connection to
    // another door. r1's link to r2 had used 127.0.0.1:45001, r2's link to r1 then got it, and an
    // append of the old link traced after r2's HELLO re-taught the book "45001 is r1": r1's HELLO
    // answer on the new link was traced as r1 -> r1.
    const d = new LineDecoder(book());
    const lines = [
      ...d.decode(input(encodeHello({ version: 2, replicaId: 1, groupId: 0 }), flow(R1_OUT, R2))),
      ...d.decode(input(encodeHello({ version: 2, replicaId: 2, groupId: 0 }), flow(R1_OUT, R1))),
      ...d.decode(input(encodeRaft(append), flow(R1_OUT, R2))),
      ...d.decode(input(encodeHello({ version: 2, replicaId: 1, groupId: 0 }), flow(R1, R1_OUT))),
      ...d.decode(input(encodeHello({ version: 2, replicaId: 2, groupId: 0 }), flow(R2, R1_OUT))),
    ];
    assert.deepEqual(
      lines.map((l) => [l.msg, l.from, l.to]),
      [
        ['Hello', 1, 2],
        ['Hello', 2, 1],
        ['AppendEntries', 1, 2],
        ['Hello', 1, 2],
        ['Hello', 2, 1],
      ],
    );
  });

  it('JSON lines stay valid with any key bytes', () => {
    const d = new LineDecoder(book());
    for (const key of ['a\\b', 'tab\there', '\u00ff\u0000"', 'x'.repeat(40)]) {
      const put = encodeRequest(0, { op: 'put', clientId: 1n, seq: 1, key: Buffer.from(key, 'latin1'), value: new Uint8Array(1) });
      const [l] = d.decode(input(encodeForward(1, { type: put[4]!, hops: 1, body: put.subarray(9) }), flow(R2, R1_OUT)), { from: 2, to: 1 });
      assert.ok(l);
      const o = JSON.parse(jsonLine(l, WALL));
      assert.equal(o.key, l.fields.key);
      assert.equal(o.msg, 'Forward(Put)');
    }
  });

  it('client connections are hidden unless asked for, and counted', () => {
    const get = encodeRequest(3, { op: 'get', key: new Uint8Array([0x6b]), consistency: 'linearizable' });
    const answer = encodeResponse(3, { kind: 'value', value: null });
    const hidden = new LineDecoder(book());
    assert.deepEqual(hidden.decode(input(get, flow(CLIENT, R1))), []);
    assert.deepEqual(hidden.decode(input(answer, flow(R1, CLIENT))), []);
    assert.equal(hidden.counters.hidden, 2);
    assert.equal(hidden.verdict(flow(CLIENT, R1)), 'hide');
    assert.equal(hidden.verdict(flow(R1, CLIENT)), 'hide');
    const shown = new LineDecoder(book(), { includeClients: true });
    const lines = [...shown.decode(input(get, flow(CLIENT, R1))), ...shown.decode(input(answer, flow(R1, CLIENT)))];
    assert.deepEqual(
      lines.map((l) => [l.src, l.dst, l.msg, l.requestId, l.group]),
      [
        ['127.0.0.1:45999', 'r1', 'Get', 3, 0],
        ['r1', '127.0.0.1:45999', 'Value', 3, 0],
      ],
    );
  });

  it('with a sender, only what that replica sends; other flows are marked for dropping', () => {
    const d = new LineDecoder(book(), { sender: 2 });
    assert.deepEqual(d.decode(input(encodeRaft(append), flow(R1_OUT, R2))), []);
    assert.equal(d.verdict(flow(R1_OUT, R2)), 'hide');
    const resp: Message = { type: MsgType.AppendResp, from: 2, to: 1, term: 5, index: 12, reject: false, hintIndex: 0, hintTerm: 0 };
    const lines = d.decode(input(encodeRaft(resp), flow(R2_OUT, R1)));
    assert.deepEqual(
      lines.map((l) => [l.src, l.dst, l.msg, l.fields]),
      [['r2', 'r1', 'AppendEntriesResp', { term: 5, index: 12, reject: false }]],
    );
    assert.equal(d.verdict(flow(R2_OUT, R1)), 'show');
    assert.equal(d.counters.hidden, 1);
  });

  it('frames from the tap carry their ends: no flow, no book needed', () => {
    const d = new LineDecoder(new AddressBook([]), { sender: 1 });
    const put = encodeRequest(0, { op: 'delete', clientId: 1n, seq: 2, key: new Uint8Array([0x61]) });
    const lines = [
      ...d.decode(input(encodeRaft(append)), { from: 1, to: 2 }),
      ...d.decode(input(encodeForward(9, { type: put[4]!, hops: 1, body: put.subarray(9) })), { from: 1, to: 3 }),
    ];
    assert.deepEqual(
      lines.map((l) => [l.src, l.dst, l.msg, l.group]),
      [
        ['r1', 'r2', 'AppendEntries', undefined],
        ['r1', 'r3', 'Forward(Delete)', undefined],
      ],
    );
    assert.match(textLine(lines[0]!, WALL), / g\? r1 -> r2 AppendEntries /);
  });

  it('undecodable frames are counted, not printed', () => {
    const d = new LineDecoder(book(), { includeClients: true });
    const unknown = new Uint8Array([0, 0, 0, 7, 0x5a, 0, 0, 0, 0, 1, 2]);
    assert.deepEqual(d.decode(input(unknown, flow(R1_OUT, R2))), []);
    // PreVoteResp with a bool byte of 2: the whole body is there and does not parse.
    const bad = encodeRaft({ type: MsgType.PreVoteResp, from: 3, to: 2, term: 6, reject: false });
    bad[bad.length - 1] = 2;
    assert.deepEqual(d.decode(input(bad, flow(R1_OUT, R2))), []);
    assert.equal(d.counters.undecodable, 2);
    assert.equal(d.counters.lines, 0);
  });
});

describe('address book', () => {
  it('maps literal addresses exactly, localhost to loopback, a configured IPv4-mapped address to IPv4', () => {
    const b = new AddressBook([
      { id: 1, group: 0, address: '127.0.0.1:7001' },
      { id: 2, group: 0, address: 'localhost:7002' },
      { id: 3, group: 0, address: '[::ffff:127.0.0.1]:7003' },
    ]);
    assert.equal(b.idOf({ addr: '127.0.0.1', port: 7001 }), 1);
    assert.equal(b.idOf({ addr: '127.0.0.1', port: 7003 }), 3);
    assert.equal(b.idOf({ addr: '10.0.0.1', port: 7001 }), undefined);
    assert.equal(b.idOf({ addr: '::1', port: 7002 }), 2);
    assert.equal(b.label({ addr: '::1', port: 9 }), '[::1]:9');
  });

  it('host names map by port while the port is unambiguous; the local addresses are the local replica', () => {
    const b = new AddressBook(
      [
        { id: 1, group: 3, address: 'kvs-1.kvs:7000' },
        { id: 2, group: 3, address: 'kvs-2.kvs:7000' },
        { id: 4, group: 3, address: 'kvs-4.kvs:7004' },
      ],
      { self: 1, localAddrs: ['10.1.0.5'] },
    );
    assert.equal(b.idOf({ addr: '10.1.0.9', port: 7004 }), 4);
    assert.equal(b.idOf({ addr: '10.1.0.7', port: 7000 }), undefined);
    assert.equal(b.idOf({ addr: '10.1.0.5', port: 41000 }), 1);
    b.learn('c1', { addr: '10.1.0.7', port: 7000 }, 2);
    assert.equal(b.idOf({ addr: '10.1.0.7', port: 7000 }, 'c1'), 2);
    assert.equal(b.idOf({ addr: '10.1.0.7', port: 7000 }, 'c2'), undefined, 'learned on another connection');
    assert.equal(b.groupOf(2), 3);
  });

  it('learned endpoints are bounded and newer evidence wins', () => {
    const b = new AddressBook([], { maxLearned: 2 });
    b.learn('c', { addr: 'a', port: 1 }, 1, 5);
    b.learn('c', { addr: 'a', port: 2 }, 2);
    b.learn('c', { addr: 'a', port: 1 }, 3);
    b.learn('c', { addr: 'a', port: 3 }, 4);
    assert.equal(b.idOf({ addr: 'a', port: 2 }, 'c'), undefined);
    assert.equal(b.idOf({ addr: 'a', port: 1 }, 'c'), 3);
    assert.equal(b.idOf({ addr: 'a', port: 3 }, 'c'), 4);
    assert.equal(b.groupOf(1), 5);
  });
});

describe('summary line', () => {
  const s: TraceSummary = {
    source: 'ebpf',
    frames: 10,
    messages: 12,
    lines: 9,
    hidden: 2,
    partial: 1,
    undecodable: 1,
    undecodableBytes: 40,
    unseen: 0,
    resyncs: 1,
    lostBytes: 0,
    cutBytes: 7,
    drops: 3,
    badRecords: 0,
  };
  it('text and JSON carry every counter', () => {
    assert.match(
      formatSummaryLine(s, 'text', WALL, 'g0 r1', true),
      /^# \d\d:\d\d:\d\d\.123456 g0 r1 trace summary \(final\): source=ebpf frames=10 messages=12 lines=9 hidden=2 partial=1 undecodable=1 undecodableBytes=40 unseen=0 resyncs=1 lostBytes=0 cutBytes=7 drops=3 badRecords=0$/,
    );
    const o = JSON.parse(formatSummaryLine(s, 'json', WALL, 'cluster', false));
    assert.equal(o.kind, 'summary');
    assert.equal(o.final, false);
    assert.equal(o.drops, 3);
    assert.equal(o.label, 'cluster');
    assert.equal(o.group, undefined);
    const mine = JSON.parse(formatSummaryLine(s, 'json', WALL, 'g1 r102', true, { group: 1, replica: 102 }));
    assert.deepEqual([mine.group, mine.replica, mine.label], [1, 102, 'g1 r102']);
  });
});

describe('tap source', () => {
  it('queues tapped frames (header and a view of the body) and delivers them later, in one batch', async () => {
    const src = new TapSource({ now: () => 42n });
    const got: { from: number; to: number; frame: FrameInput }[][] = [];
    src.start((b) => got.push(b));
    const bytes = encodeRaft(append);
    src.tap(1, 2, bytes);
    src.tap(1, 3, bytes);
    assert.equal(got.length, 0, 'never inside the transport write');
    await new Promise((r) => setImmediate(r));
    assert.equal(got.length, 1);
    const [a, b] = got[0]!;
    assert.deepEqual([a?.from, a?.to, b?.to], [1, 2, 3]);
    assert.deepEqual({ ...a!.frame, bodyPrefix: [...a!.frame.bodyPrefix] }, { ts: 42n, type: 0x45, requestId: 0, length: bytes.length - 4, bodyPrefix: [...bytes.subarray(9)] });
    assert.equal(a!.frame.bodyPrefix.buffer, bytes.buffer, 'a view, no copy');
    await src.stop();
    src.tap(1, 2, bytes);
    assert.deepEqual(src.stats(), { delivered: 2, dropped: 0 });
  });

  it('the queue is bounded in bytes too', async () => {
    const bytes = encodeRaft(append);
    const src = new TapSource({ maxQueuedBytes: bytes.length * 2, maxBodyPrefix: 8 });
    const got: FrameInput[] = [];
    src.start((b) => got.push(...b.map((t) => t.frame)));
    for (let i = 0; i < 3; i++) src.tap(1, 2, bytes);
    await new Promise((r) => setImmediate(r));
    src.tap(1, 2, bytes);
    await src.stop();
    assert.deepEqual(src.stats(), { delivered: 3, dropped: 1 });
    assert.equal(got[0]?.bodyPrefix.length, 8);
  });

  it('a full queue drops and counts; stop() delivers what is queued', async () => {
    const src = new TapSource({ maxQueued: 2 });
    const got: number[] = [];
    src.start((b) => got.push(b.length));
    for (let i = 0; i < 5; i++) src.tap(1, 2, encodeRaft(append));
    await src.stop();
    assert.deepEqual(got, [2]);
    assert.deepEqual(src.stats(), { delivered: 2, dropped: 3 });
  });

  it('the decoder turns tapped frames into the same lines as captured ones', async () => {
    const src = new TapSource();
    const d = new LineDecoder(book(), { sender: 1 });
    const lines: TraceLine[] = [];
    src.start((batch) => {
      for (const t of batch) lines.push(...d.decode(t.frame, t));
    });
    src.tap(1, 2, encodeRaftBatch([append, { type: MsgType.TimeoutNow, from: 1, to: 2, term: 5 }]));
    await src.stop();
    assert.deepEqual(
      lines.map((l) => [l.group, l.src, l.dst, l.msg, l.fields.term]),
      [
        [0, 'r1', 'r2', 'AppendEntries', 5],
        [0, 'r1', 'r2', 'TimeoutNow', 5],
      ],
    );
  });
});
