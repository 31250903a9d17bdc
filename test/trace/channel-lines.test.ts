// CHANNEL frames (docs/protocol.md §6.5) → trace lines: the lines the carried frame would give,
// named by the group and replicas the CHANNEL states rather than the connection's own pair; cut
// captures give what is there, marked partial; malformed CHANNELs are counted, never thrown.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MsgType, type Message } from '../../src/raft/types.ts';
import { AddressBook } from '../../src/trace/address-book.ts';
import { jsonLine, textLine } from '../../src/trace/format.ts';
import { LineDecoder, type FrameInput, type TraceLine } from '../../src/trace/lines.ts';
import type { Flow } from '../../src/trace/reassembly.ts';
import type { Endpoint } from '../../src/trace/source.ts';
import { CHANNEL_PREFIX_BYTES, encodeChannel, encodeChannelPrefix } from '../../src/wire/channel.ts';
import { encodeRequest, encodeResponse } from '../../src/wire/client-codec.ts';
import { encodeForward } from '../../src/wire/forward.ts';
import { HEADER_BYTES } from '../../src/wire/frame.ts';
import { encodeHello } from '../../src/wire/hello.ts';
import { encodeRaft, encodeRaftBatch } from '../../src/wire/raft-codec.ts';

// Process A (door 26001) hosts r1 of group 1 and r11 of group 2; process B (door 26002) hosts r2
// and r15. A dialed B from 45001 for the pair r1 → r2; r11 → r15 travels on that connection too.
const B: Endpoint = { addr: '127.0.0.1', port: 26002 };
const A_OUT: Endpoint = { addr: '127.0.0.1', port: 45001 };
const WALL = 1_700_000_000_123_456_789n;

const book = (): AddressBook =>
  new AddressBook([
    { id: 1, group: 1, address: '127.0.0.1:26001' },
    { id: 2, group: 1, address: '127.0.0.1:26002' },
    { id: 11, group: 2, address: '127.0.0.1:26011' },
    { id: 15, group: 2, address: '127.0.0.1:26015' },
  ]);

const flow = (src: Endpoint, dst: Endpoint): Flow => ({ key: `${src.addr}|${src.port}|${dst.addr}|${dst.port}`, src, dst });
const OUT = flow(A_OUT, B);
const BACK = flow(B, A_OUT);

/** A captured frame: header parsed from the bytes, body cut to `keep` bytes. */
function input(bytes: Uint8Array, f?: Flow, keep = Infinity): FrameInput {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = v.getUint32(0);
  return { ts: 1_000n, type: v.getUint8(4), requestId: v.getUint32(5), length, bodyPrefix: bytes.subarray(9, 9 + Math.min(length - 5, keep)), ...(f ? { flow: f } : {}) };
}

/** A decoder that saw the connection's handshake: r1 dialed, r2 answered naming its process. */
function shaken(opts: ConstructorParameters<typeof LineDecoder>[1] = {}): { d: LineDecoder; hellos: TraceLine[] } {
  const d = new LineDecoder(book(), opts);
  const hellos = [
    ...d.decode(input(encodeHello({ version: 3, replicaId: 1, groupId: 1 }), OUT)),
    ...d.decode(input(encodeHello({ version: 3, replicaId: 2, groupId: 1, process: 0xabc_def0 }), BACK)),
  ];
  return { d, hellos };
}

const at = { group: 2, from: 11, to: 15 };
const hb: Message = { type: MsgType.Heartbeat, from: 11, to: 15, term: 5, commit: 12, round: 3 };
const append: Message = { type: MsgType.Append, from: 11, to: 15, term: 5, prevIndex: 9, prevTerm: 4, commit: 8, entries: [{ index: 10, term: 5, type: 0, data: new Uint8Array(20) }] };
const batch = encodeRaftBatch([hb, append, { type: MsgType.TimeoutNow, from: 11, to: 15, term: 5 }]);
const view = (l: TraceLine) => [l.group, l.from, l.to, l.src, l.dst, l.msg, l.partial];

describe('trace lines of CHANNEL frames', () => {
  it('the HELLO answer shows its process', () => {
    const { hellos } = shaken();
    assert.deepEqual(
      hellos.map((l) => [l.src, l.dst, l.fields]),
      [
        ['r1', 'r2', { version: 3, replica: 1, group: 1 }],
        ['r2', 'r1', { version: 3, replica: 2, group: 1, process: 0xabc_def0 }],
      ],
    );
    assert.match(textLine(hellos[1]!, WALL), / g1 r2 -> r1 Hello version=3 replica=2 group=1 process=180150000 bytes=22$/);
    // Cut inside the process id: the HELLO is partial.
    const [cut] = new LineDecoder(book()).decode(input(encodeHello({ version: 3, replicaId: 2, groupId: 1, process: 7 }), BACK, 18));
    assert.deepEqual([cut?.msg, cut?.partial, cut?.fields.process], ['Hello', true, undefined]);
  });

  it('a RAFT_BATCH inside gives one line per message, with the CHANNEL group, from and to', () => {
    const { d } = shaken();
    const lines = d.decode(input(encodeChannel(at, batch), OUT));
    assert.deepEqual(
      lines.map((l) => [...view(l), l.batch, l.channel, l.fields.group]),
      [
        [2, 11, 15, 'r11', 'r15', 'Heartbeat', false, { index: 0, count: 3 }, true, 2],
        [2, 11, 15, 'r11', 'r15', 'AppendEntries', false, { index: 1, count: 3 }, true, 2],
        [2, 11, 15, 'r11', 'r15', 'TimeoutNow', false, { index: 2, count: 3 }, true, 2],
      ],
    );
    // The same lines a plain batch would give, plus the group field.
    const plain = new LineDecoder(book()).decode(input(batch, flow({ addr: '127.0.0.1', port: 45011 }, { addr: '127.0.0.1', port: 26015 })));
    assert.deepEqual(
      lines.map((l) => ({ ...l.fields, group: undefined })),
      plain.map((l) => ({ group: undefined, ...l.fields })),
    );
    assert.deepEqual(
      lines.map((l) => [l.wire, l.bytes, l.requestId]),
      plain.map((l) => [l.wire, l.bytes, l.requestId]),
    );
    assert.match(textLine(lines[0]!, WALL), /^\d\d:\d\d:\d\d\.123456 g2 r11 -> r15 Heartbeat group=2 term=5 commit=12 round=3 bytes=32$/);
    const j = JSON.parse(jsonLine(lines[1]!, WALL));
    assert.deepEqual([j.group, j.from, j.to, j.msg, j.type, j.batch, j.channel, j.firstIndex, j.lastIndex], [2, 11, 15, 'AppendEntries', '0x45', '2/3', true, 10, 10]);
    assert.deepEqual(d.counters, { frames: 3, messages: 5, lines: 5, hidden: 0, partial: 0, undecodable: 0, unseen: 0 });
  });

  it("what a CHANNEL carries does not teach the book: the connection's own frames keep their names", () => {
    const { d } = shaken();
    d.decode(input(encodeChannel(at, encodeRaft(hb)), OUT));
    d.decode(input(encodeChannel({ group: 2, from: 15, to: 11 }, encodeRaft({ type: MsgType.HeartbeatResp, from: 15, to: 11, term: 5, round: 3 })), BACK));
    const put = encodeRequest(0, { op: 'delete', clientId: 1n, seq: 2, key: new Uint8Array([0x61]) });
    const [fwd] = d.decode(input(encodeForward(4, { type: put[4]!, hops: 1, body: put.subarray(9) }), OUT));
    const [ok] = d.decode(input(encodeResponse(4, { kind: 'ok' }), BACK));
    assert.deepEqual([fwd, ok].map((l) => [l?.group, l?.src, l?.dst, l?.msg, l?.requestId, l?.channel]), [
      [1, 'r1', 'r2', 'Forward(Delete)', 4, undefined],
      [1, 'r2', 'r1', 'Ok', 4, undefined],
    ]);
  });

  it('a FORWARD inside, its wrapped answer, and the not-hosted ERROR', () => {
    const { d } = shaken();
    const put = encodeRequest(0, { op: 'put', clientId: 0xabcn, seq: 4, key: new TextEncoder().encode('user:1'), value: new Uint8Array(3) });
    const [f] = d.decode(input(encodeChannel(at, encodeForward(7, { type: put[4]!, hops: 1, body: put.subarray(9) })), OUT));
    assert.ok(f);
    assert.deepEqual([...view(f), f.requestId, f.wire], [2, 11, 15, 'r11', 'r15', 'Forward(Put)', false, 7, 0x50]);
    assert.deepEqual(f.fields, { group: 2, hops: 1, op: 'Put', client: 'abc', seq: 4, key: '"user:1"', valueBytes: 3 });
    assert.match(textLine(f, WALL), / g2 r11 -> r15 Forward\(Put\) #7 group=2 hops=1 client=abc seq=4 key="user:1" valueBytes=3 bytes=\d+$/);
    const [ok] = d.decode(input(encodeChannel({ group: 2, from: 15, to: 11 }, encodeResponse(7, { kind: 'ok' })), BACK));
    assert.deepEqual([...view(ok!), ok?.requestId], [2, 15, 11, 'r15', 'r11', 'Ok', false, 7]);
    const [err] = d.decode(input(encodeChannel({ group: 2, from: 15, to: 11 }, encodeResponse(0, { kind: 'error', error: { code: 'UNAVAILABLE', message: '' } })), BACK));
    assert.deepEqual([...view(err!), err?.requestId, err?.fields.code], [2, 15, 11, 'r15', 'r11', 'Error', false, undefined, 'UNAVAILABLE']);
  });

  it('a cut capture gives what is there, marked partial, and never throws', () => {
    const frame = encodeChannel(at, batch);
    const body = frame.length - HEADER_BYTES;
    // Keep the ids, the batch header, count and the whole first item, and 20 bytes of the second.
    const keep = 12 + HEADER_BYTES + 2 + (5 + 32) + 5 + 20;
    const { d } = shaken();
    const lines = d.decode(input(frame, OUT, keep));
    assert.deepEqual(
      lines.map((l) => [l.msg, l.from, l.to, l.group, l.partial, l.fields.term]),
      [
        ['Heartbeat', 11, 15, 2, false, 5],
        ['AppendEntries', 11, 15, 2, true, 5],
      ],
    );
    assert.equal(d.counters.unseen, 1);
    assert.match(textLine(lines[1]!, WALL), / partial$/);

    // Cut before the carried frame's header: one Channel line with the ids.
    const [head] = new LineDecoder(book()).decode(input(frame, OUT, 12 + 4));
    assert.ok(head);
    assert.deepEqual([...view(head), head.wire, head.fields, head.bytes], [2, 11, 15, 'r11', 'r15', 'Channel', true, 0x51, { group: 2 }, body]);
    // Cut inside the ids: what is there, never the flow's own pair.
    const [ids] = new LineDecoder(book()).decode(input(frame, OUT, 6));
    assert.deepEqual([ids?.msg, ids?.group, ids?.from, ids?.to, ids?.partial], ['Channel', 2, undefined, undefined, true]);

    // Every cut of a channelled batch, forward and append: no throw; the CHANNEL's ids on every
    // line; before the carried header, one partial Channel line.
    const put = encodeRequest(0, { op: 'put', clientId: 1n, seq: 1, key: new Uint8Array(4), value: new Uint8Array(4) });
    for (const f of [frame, encodeChannel(at, encodeForward(3, { type: put[4]!, hops: 0, body: put.subarray(9) })), encodeChannel(at, encodeRaft(append))]) {
      for (let k = 0; k <= f.length - HEADER_BYTES; k++) {
        const dk = new LineDecoder(book());
        const got = dk.decode(input(f, OUT, k));
        const whole = k === f.length - HEADER_BYTES;
        for (const l of got) {
          if (l.msg !== 'Channel') assert.deepEqual([l.group, l.from, l.to], [2, 11, 15], `cut ${k}`);
          if (whole) assert.equal(l.partial, false, `cut ${k}`);
        }
        if (k < 12 + HEADER_BYTES) assert.deepEqual(got.map((l) => [l.msg, l.partial]), [['Channel', true]], `cut ${k}`);
      }
    }
  });

  it('a malformed CHANNEL is counted undecodable, whole or cut', () => {
    const inner = encodeRaft(hb);
    const good = encodeChannel(at, inner);
    const zeroFrom = Buffer.from(good);
    zeroFrom.writeUInt32BE(0, HEADER_BYTES + 4);
    const longer = Buffer.from(good);
    longer.writeUInt32BE(inner.length - 4 + 1, CHANNEL_PREFIX_BYTES); // inner length one more than there is
    const hello = encodeHello({ version: 3, replicaId: 11, groupId: 2 });
    const helloInside = Buffer.concat([encodeChannelPrefix(at, hello), hello]);
    const channelInside = encodeChannel(at, good);
    const tooShort = Buffer.from([0, 0, 0, 5 + 12 + 4, 0x51, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 11, 0, 0, 0, 15, 0, 0, 0, 5]);
    for (const [name, bad] of Object.entries({ zeroFrom, longer, helloInside, channelInside, tooShort })) {
      for (const keep of [Infinity, 26]) {
        const d = new LineDecoder(book());
        assert.deepEqual(d.decode(input(bad, OUT, keep)), [], `${name} keep ${keep}`);
        assert.equal(d.counters.undecodable, 1, `${name} keep ${keep}`);
        assert.equal(d.counters.lines, 0);
      }
    }
    // A malformed message inside a channelled batch: the others still show.
    const bad = Buffer.from(encodeChannel(at, encodeRaftBatch([{ type: MsgType.VoteResp, from: 11, to: 15, term: 5, reject: false }, hb])));
    bad[CHANNEL_PREFIX_BYTES + HEADER_BYTES + 2 + 5 + 16] = 2; // VoteResp's reject byte
    const d = new LineDecoder(book());
    assert.deepEqual(
      d.decode(input(bad, OUT)).map((l) => l.msg),
      ['Heartbeat'],
    );
    assert.equal(d.counters.undecodable, 1);
  });

  it('with a sender: its channelled sends show, and a shared connection is never dropped for its own pair', () => {
    const { d } = shaken({ sender: 15 });
    assert.deepEqual(d.decode(input(encodeChannel(at, encodeRaft(hb)), OUT)), []);
    assert.equal(d.verdict(OUT), undefined, 'r1 sends here, but so may r15');
    const resp = encodeRaft({ type: MsgType.HeartbeatResp, from: 15, to: 11, term: 5, round: 3 });
    const lines = d.decode(input(encodeChannel({ group: 2, from: 15, to: 11 }, resp), BACK));
    assert.deepEqual(lines.map(view), [[2, 15, 11, 'r15', 'r11', 'HeartbeatResp', false]]);
    assert.equal(d.verdict(BACK), undefined);
    assert.equal(d.counters.hidden, 3, "the HELLOs and r11's heartbeat");

    // A connection whose acceptor named no process carries only its pair: dropped as before.
    const plain = new LineDecoder(book(), { sender: 15 });
    plain.decode(input(encodeHello({ version: 3, replicaId: 1, groupId: 1 }), OUT));
    assert.equal(plain.verdict(OUT), undefined, 'the answer may still name a process');
    plain.decode(input(encodeHello({ version: 3, replicaId: 2, groupId: 1 }), BACK));
    assert.equal(plain.verdict(OUT), 'hide');
    const old = new LineDecoder(book(), { sender: 15 });
    old.decode(input(encodeHello({ version: 2, replicaId: 1, groupId: 1 }), OUT));
    assert.equal(old.verdict(OUT), 'hide');
  });

  it('tapped CHANNEL frames are named by the CHANNEL, not by the ends the tap reports', () => {
    const d = new LineDecoder(new AddressBook([]), { sender: 11 });
    const lines = d.decode(input(encodeChannel(at, batch)), { from: 1, to: 2 });
    assert.deepEqual(
      lines.map((l) => [l.group, l.src, l.dst, l.msg]),
      [
        [2, 'r11', 'r15', 'Heartbeat'],
        [2, 'r11', 'r15', 'AppendEntries'],
        [2, 'r11', 'r15', 'TimeoutNow'],
      ],
    );
  });
});
