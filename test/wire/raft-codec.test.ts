import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Message } from '../../src/raft/types.ts';
import { MsgType } from '../../src/raft/types.ts';
import { BadRequestError } from '../../src/wire/errors.ts';
import { type Frame, FrameDecoder, HEADER_BYTES } from '../../src/wire/frame.ts';
import { FrameType } from '../../src/wire/frame-types.ts';
import {
  decodeRaft,
  decodeRaftBatch,
  decodeRaftFrame,
  encodeRaft,
  encodeRaftBatch,
  encodeRaftMessages,
  raftBodySize,
} from '../../src/wire/raft-codec.ts';
import { entries, norm, sampleMessages } from './helpers.ts';

function frameOf(buf: Buffer): Frame {
  const d = new FrameDecoder();
  d.push(buf);
  const f = d.read();
  assert.ok(f !== null);
  assert.equal(d.read(), null);
  return f;
}

const isBad = (e: unknown) => e instanceof BadRequestError;

describe('raft codec', () => {
  it('round-trips every message type, one per frame', () => {
    for (const m of sampleMessages()) {
      const buf = encodeRaft(m);
      assert.equal(buf.length, HEADER_BYTES + raftBodySize(m));
      const f = frameOf(buf);
      assert.equal(f.type, 0x40 + m.type);
      assert.equal(f.requestId, 0);
      assert.deepEqual(norm(decodeRaft(f.type, f.body)), norm(m), `type ${m.type}`);
    }
  });

  it('round-trips a batch of every message, in order', () => {
    const msgs = sampleMessages();
    const f = frameOf(encodeRaftBatch(msgs));
    assert.equal(f.type, FrameType.RaftBatch);
    assert.deepEqual(norm(decodeRaftBatch(f.body)), norm(msgs));
    assert.deepEqual(norm(decodeRaftFrame(f.type, f.body)), norm(msgs));
  });

  it('decodes entry data as views into the body, not copies', () => {
    const m: Message = { type: MsgType.Append, from: 1, to: 2, term: 3, prevIndex: 0, prevTerm: 0, entries: entries(0, 4, 16), commit: 0 };
    const f = frameOf(encodeRaft(m));
    const d = decodeRaft(f.type, f.body);
    assert.equal(d.type, MsgType.Append);
    for (const e of d.type === MsgType.Append ? d.entries : []) {
      assert.equal(e.data.buffer, f.body.buffer);
      assert.ok(e.data.byteOffset >= f.body.byteOffset && e.data.byteOffset + e.data.length <= f.body.byteOffset + f.body.length);
    }
  });

  it('refuses to encode non-contiguous entries or out-of-range numbers', () => {
    const b = { type: MsgType.Append, from: 1, to: 2, term: 3, prevTerm: 0, commit: 0 } as const;
    assert.throws(() => encodeRaft({ ...b, prevIndex: 5, entries: entries(6, 1, 1) }), RangeError);
    assert.throws(() => encodeRaft({ ...b, prevIndex: -1, entries: [] }), RangeError);
    assert.throws(() => encodeRaft({ ...b, prevIndex: 0.5, entries: [] }), RangeError);
    assert.throws(() => encodeRaft({ ...b, from: 2 ** 32, prevIndex: 0, entries: [] }), RangeError);
  });

  it('packs a turn of messages into frames that fit, order kept', () => {
    const big = { type: MsgType.Append, from: 1, to: 2, term: 3, prevTerm: 3, commit: 0 } as const;
    const msgs: Message[] = [];
    for (let i = 0; i < 10; i++) msgs.push({ ...big, prevIndex: i * 10, entries: entries(i * 10, 10, 100) });
    msgs.push({ type: MsgType.Heartbeat, from: 1, to: 2, term: 3, commit: 5, round: 1 });
    const max = 4096;
    const frames = encodeRaftMessages(msgs, max);
    assert.ok(frames.length > 1);
    const d = new FrameDecoder({ maxFrameBytes: max });
    const out: Message[] = [];
    for (const buf of frames) {
      assert.ok(buf.length <= max);
      d.push(buf);
      for (let f; (f = d.read()) !== null; ) out.push(...decodeRaftFrame(f.type, f.body));
    }
    assert.deepEqual(norm(out), norm(msgs));

    const single = encodeRaftMessages([msgs[10]!]);
    assert.equal(single.length, 1);
    assert.equal(frameOf(single[0]!).type, FrameType.RaftHeartbeat);
    assert.deepEqual(encodeRaftMessages([]), []);
    assert.throws(() => encodeRaftMessages([msgs[0]!], 512), RangeError);
  });

  it('rejects every truncation and any trailing byte with BadRequestError', () => {
    for (const m of sampleMessages().filter((x) => raftBodySize(x) < 2000)) {
      const f = frameOf(encodeRaft(m));
      // A quiet heartbeat without its optional flags byte is the plain heartbeat (protocol 1); a
      // blank answer without it is the answer of a replica that is not blank (protocol < 4).
      const tailed = (m.type === MsgType.Heartbeat && m.quiet) || ((m.type === MsgType.AppendResp || m.type === MsgType.HeartbeatResp) && m.blank);
      const optionalTail = tailed ? f.body.length - 1 : -1;
      for (let cut = 0; cut < f.body.length; cut++) {
        if (cut === optionalTail) {
          const { quiet: _q, blank: _b, ...plain } = m as Message & { quiet?: true; blank?: true };
          assert.deepEqual(decodeRaft(f.type, f.body.subarray(0, cut)), plain);
          continue;
        }
        assert.throws(() => decodeRaft(f.type, f.body.subarray(0, cut)), isBad, `type ${m.type} cut ${cut}`);
      }
      const longer = Buffer.concat([f.body, Buffer.from([0])]);
      assert.throws(() => decodeRaft(f.type, longer), isBad);
    }
  });

  it("carries a blank follower's flag on its answers; an answer without it (protocol < 4) is not blank", () => {
    const base = { from: 2, to: 1, term: 5 } as const;
    const answers: Message[] = [
      { ...base, type: MsgType.AppendResp, index: 12, reject: false, hintIndex: 0, hintTerm: 0, blank: true },
      { ...base, type: MsgType.AppendResp, index: 12, reject: true, hintIndex: 3, hintTerm: 1, blank: true },
      { ...base, type: MsgType.HeartbeatResp, round: 7, blank: true },
    ];
    for (const m of answers) {
      const f = frameOf(encodeRaft(m));
      const back = decodeRaft(f.type, f.body);
      assert.deepEqual(back, m);
      // The same answer as a peer of protocol 3 writes it: one byte shorter, decoded without the flag.
      const { blank: _, ...old } = m as Message & { blank?: true };
      const oldBody = frameOf(encodeRaft(old as Message)).body;
      assert.equal(oldBody.length, f.body.length - 1);
      assert.deepEqual(oldBody, f.body.subarray(0, f.body.length - 1));
      const decoded = decodeRaft(f.type, oldBody);
      assert.equal('blank' in decoded, false);
      assert.deepEqual(decoded, old);
      // Any other flag value is malformed.
      const badFlags = Buffer.from(f.body);
      badFlags[badFlags.length - 1] = 2;
      assert.throws(() => decodeRaft(f.type, badFlags), isBad);
    }
  });

  it('rejects malformed fields with BadRequestError', () => {
    const vote = frameOf(encodeRaft({ type: MsgType.Vote, from: 1, to: 2, term: 1, lastIndex: 0, lastTerm: 0, transfer: false }));
    const badFlag = Buffer.from(vote.body);
    badFlag[badFlag.length - 1] = 2;
    assert.throws(() => decodeRaft(vote.type, badFlag), isBad);

    const hugeTerm = Buffer.from(vote.body);
    hugeTerm.writeUInt32BE(0x0020_0000, 8); // term hi half: 2^53 — beyond a safe integer
    assert.throws(() => decodeRaft(vote.type, hugeTerm), isBad);

    const app = frameOf(encodeRaft({ type: MsgType.Append, from: 1, to: 2, term: 1, prevIndex: 0, prevTerm: 0, entries: entries(0, 1, 2), commit: 0 }));
    const badEntryType = Buffer.from(app.body);
    badEntryType[44 + 8] = 5;
    assert.throws(() => decodeRaft(app.type, badEntryType), isBad);
    const hugeCount = Buffer.from(app.body);
    hugeCount.writeUInt32BE(0xffff_ffff, 40);
    assert.throws(() => decodeRaft(app.type, hugeCount), isBad);

    assert.throws(() => decodeRaft(0x4e, vote.body), isBad);
    assert.throws(() => decodeRaft(FrameType.Put, vote.body), isBad);
    assert.throws(() => decodeRaftBatch(Uint8Array.from([0, 0])), isBad);
    // A batch item may not be a batch: no recursion through nested frames.
    const nested = encodeRaftBatch([{ type: MsgType.TimeoutNow, from: 1, to: 2, term: 1 }]).subarray(HEADER_BYTES);
    const wrap = Buffer.concat([Buffer.from([0, 1, FrameType.RaftBatch, 0, 0, 0, nested.length]), nested]);
    assert.throws(() => decodeRaftBatch(wrap), isBad);
  });
});
