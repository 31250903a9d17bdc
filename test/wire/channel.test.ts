// CHANNEL (0x51): another pair's whole frame inside a frame that names the group and both replicas
// (src/wire/channel.ts, docs/protocol.md §6.5).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MsgType, type Message } from '../../src/raft/types.ts';
import { decodeChannel, encodeChannel, encodeChannelPrefix, CHANNEL_PREFIX_BYTES } from '../../src/wire/channel.ts';
import { encodeRequest, encodeResponse, decodeResponse } from '../../src/wire/client-codec.ts';
import { BadRequestError } from '../../src/wire/errors.ts';
import { decodeForward, encodeForward } from '../../src/wire/forward.ts';
import { type Frame, FrameDecoder, HEADER_BYTES } from '../../src/wire/frame.ts';
import { FrameType } from '../../src/wire/frame-types.ts';
import { encodeHello } from '../../src/wire/hello.ts';
import { formatSummary, summarizeCaptured } from '../../src/wire/names.ts';
import { decodeRaftFrame, encodeRaft, encodeRaftBatch } from '../../src/wire/raft-codec.ts';
import { bytes, norm } from './helpers.ts';

function frameOf(buf: Uint8Array): Frame {
  const d = new FrameDecoder();
  d.push(buf);
  const f = d.read();
  assert.ok(f !== null);
  assert.equal(d.bufferedBytes, 0);
  return f;
}

const isBad = (e: unknown) => e instanceof BadRequestError;
const at = { group: 2, from: 1, to: 5 };
const heartbeat: Message = { type: MsgType.Heartbeat, from: 1, to: 5, term: 3, commit: 7, round: 2 };

/** A CHANNEL body by hand: the three ids, then `inner` as given. */
function body(group: number, from: number, to: number, inner: Uint8Array): Buffer {
  const b = Buffer.alloc(12 + inner.length);
  b.writeUInt32BE(group, 0);
  b.writeUInt32BE(from, 4);
  b.writeUInt32BE(to, 8);
  b.set(inner, 12);
  return b;
}

describe('CHANNEL frames', () => {
  it('round-trip a Raft message: the ids, and the inner frame byte for byte', () => {
    const inner = encodeRaft(heartbeat);
    const buf = encodeChannel(at, inner);
    assert.equal(buf.length, CHANNEL_PREFIX_BYTES + inner.length);
    const f = frameOf(buf);
    assert.equal(f.type, FrameType.Channel);
    assert.equal(f.requestId, 0);
    const c = decodeChannel(f.body);
    assert.deepEqual([c.group, c.from, c.to], [2, 1, 5]);
    assert.equal(c.frame.type, FrameType.RaftHeartbeat);
    assert.equal(c.frame.requestId, 0);
    assert.deepEqual(Buffer.from(c.frame.body), inner.subarray(HEADER_BYTES));
    assert.equal(c.frame.body.buffer, f.body.buffer, 'the inner body is a view, not a copy');
    assert.deepEqual(decodeRaftFrame(c.frame.type, c.frame.body), [heartbeat]);
  });

  it('the prefix followed by the inner frame is the whole CHANNEL frame', () => {
    for (const inner of [encodeRaft(heartbeat), encodeRaftBatch([heartbeat, { type: MsgType.TimeoutNow, from: 1, to: 5, term: 3 }]), encodeResponse(9, { kind: 'ok' })]) {
      const prefix = encodeChannelPrefix(at, inner);
      assert.equal(prefix.length, CHANNEL_PREFIX_BYTES);
      assert.deepEqual(Buffer.concat([prefix, inner]), encodeChannel(at, inner));
    }
  });

  it('carry a batch, a forward and an answer with its request id; group 0 and the largest ids are fine', () => {
    const batch = [heartbeat, { type: MsgType.TimeoutNow, from: 1, to: 5, term: 3 } as Message];
    const c1 = decodeChannel(frameOf(encodeChannel({ group: 0, from: 0xffff_ffff, to: 1 }, encodeRaftBatch(batch))).body);
    assert.deepEqual([c1.group, c1.from, c1.to, c1.frame.type], [0, 0xffff_ffff, 1, FrameType.RaftBatch]);
    assert.deepEqual(decodeRaftFrame(c1.frame.type, c1.frame.body), batch);

    const put = encodeRequest(0, { op: 'put', clientId: 1n, seq: 2, key: bytes('k'), value: bytes('v') });
    const c2 = decodeChannel(frameOf(encodeChannel(at, encodeForward(77, { type: put[4]!, hops: 1, body: put.subarray(HEADER_BYTES) }))).body);
    assert.deepEqual([c2.frame.type, c2.frame.requestId], [FrameType.Forward, 77]);
    assert.equal(decodeForward(c2.frame.body).hops, 1);

    const c3 = decodeChannel(frameOf(encodeChannel({ group: 2, from: 5, to: 1 }, encodeResponse(77, { kind: 'error', error: { code: 'UNAVAILABLE', message: '' } }))).body);
    assert.deepEqual([c3.from, c3.to, c3.frame.type, c3.frame.requestId], [5, 1, FrameType.Error, 77]);
    assert.deepEqual(norm(decodeResponse(c3.frame.type, c3.frame.body)), norm({ kind: 'error', error: { code: 'UNAVAILABLE', message: '' } }));
  });

  it('reject an inner frame whose length disagrees with the CHANNEL body', () => {
    const inner = Buffer.from(encodeRaft(heartbeat));
    assert.throws(() => decodeChannel(body(2, 1, 5, Buffer.concat([inner, Buffer.from([0])]))), isBad, 'a byte after the inner frame');
    assert.throws(() => decodeChannel(body(2, 1, 5, inner.subarray(0, inner.length - 1))), isBad, 'the inner frame cut short');
    const longer = Buffer.from(inner);
    longer.writeUInt32BE(inner.length, 0); // says one byte more than there is
    assert.throws(() => decodeChannel(body(2, 1, 5, longer)), isBad, 'the inner length says more');
    assert.throws(() => decodeChannel(body(2, 1, 5, Buffer.from([0, 0, 0, 4, 0x45, 0, 0, 0, 0]))), isBad, 'an inner length below 5');
    assert.throws(() => decodeChannel(body(2, 1, 5, Buffer.from([0, 0, 0, 5]))), isBad, 'no whole inner header');
    assert.throws(() => decodeChannel(body(2, 1, 5, new Uint8Array(0))), isBad, 'no inner frame at all');
  });

  it('reject a HELLO or a CHANNEL inside', () => {
    const hello = encodeHello({ version: 3, replicaId: 1, groupId: 2 });
    assert.throws(() => decodeChannel(body(2, 1, 5, hello)), isBad);
    assert.throws(() => decodeChannel(body(2, 1, 5, encodeChannel(at, encodeRaft(heartbeat)))), isBad);
  });

  it('reject replica id 0 on both sides, when encoding and decoding', () => {
    const inner = encodeRaft(heartbeat);
    assert.throws(() => decodeChannel(body(2, 0, 5, inner)), isBad);
    assert.throws(() => decodeChannel(body(2, 1, 0, inner)), isBad);
    assert.throws(() => encodeChannel({ group: 2, from: 0, to: 5 }, inner), RangeError);
    assert.throws(() => encodeChannelPrefix({ group: 2, from: 1, to: 0 }, inner), RangeError);
    assert.throws(() => encodeChannel({ group: -1, from: 1, to: 5 }, inner), RangeError);
    assert.throws(() => encodeChannel({ group: 2, from: 2 ** 32, to: 5 }, inner), RangeError);
  });

  it('reject a truncated body anywhere', () => {
    const whole = frameOf(encodeChannel(at, encodeRaft(heartbeat))).body;
    decodeChannel(whole);
    for (let cut = 0; cut < whole.length; cut++) assert.throws(() => decodeChannel(whole.subarray(0, cut)), isBad, `cut at ${cut}`);
  });

  it('summaries: the CHANNEL ids, then the inner frame in brackets; cut or malformed marked so', () => {
    const buf = encodeChannel(at, encodeRaft(heartbeat));
    const [s] = summarizeCaptured(buf);
    assert.ok(s);
    assert.equal(formatSummary(s), 'Channel group=2 from=1 to=5 bytes=53 [RaftHeartbeat from=1 to=5 term=3 commit=7 round=2 bytes=32]');
    const answer = summarizeCaptured(encodeChannel({ group: 2, from: 5, to: 1 }, encodeResponse(7, { kind: 'ok' })))[0]!;
    assert.equal(formatSummary(answer), 'Channel group=2 from=5 to=1 bytes=21 [Ok #7 bytes=0]');
    const cut = summarizeCaptured(buf.subarray(0, CHANNEL_PREFIX_BYTES + HEADER_BYTES + 16))[0]!;
    assert.equal(formatSummary(cut), 'Channel group=2 from=1 to=5 bytes=53 partial [RaftHeartbeat from=1 to=5 term=3 bytes=32 partial]');
    const beforeInner = summarizeCaptured(buf.subarray(0, CHANNEL_PREFIX_BYTES + 4))[0]!;
    assert.deepEqual([beforeInner.partial, beforeInner.malformed, beforeInner.inner], [true, false, []]);
    const helloInside = summarizeCaptured(Buffer.concat([encodeChannelPrefix(at, encodeHello({ version: 3, replicaId: 1, groupId: 2 })), encodeHello({ version: 3, replicaId: 1, groupId: 2 })]))[0]!;
    assert.equal(helloInside.malformed, true);
    const zero = Buffer.from(buf);
    zero.writeUInt32BE(0, HEADER_BYTES + 8); // to = 0
    assert.equal(summarizeCaptured(zero.subarray(0, 30))[0]!.malformed, true, 'malformed even when cut');
  });
});
