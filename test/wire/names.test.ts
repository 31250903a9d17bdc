import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MsgType } from '../../src/raft/types.ts';
import { encodeRequest, encodeResponse } from '../../src/wire/client-codec.ts';
import { encodeChannel } from '../../src/wire/channel.ts';
import { encodeForward } from '../../src/wire/forward.ts';
import { HEADER_BYTES } from '../../src/wire/frame.ts';
import { encodeHello } from '../../src/wire/hello.ts';
import { formatSummary, summarizeBody, summarizeCaptured } from '../../src/wire/names.ts';
import { encodeRaft, encodeRaftBatch } from '../../src/wire/raft-codec.ts';
import { bytes, entries, sampleMessages, sampleRequests, sampleResponses } from './helpers.ts';

const append = encodeRaft({
  type: MsgType.Append,
  from: 1,
  to: 2,
  term: 5,
  prevIndex: 9,
  prevTerm: 4,
  entries: entries(9, 64, 100),
  commit: 8,
});

describe('frame summaries', () => {
  it('summarise a Raft append: term, indexes, entry count, bytes', () => {
    const [s] = summarizeCaptured(append);
    assert.ok(s !== undefined);
    assert.equal(s.name, 'RaftAppend');
    assert.equal(s.class, 'replica');
    assert.deepEqual(s.fields, { from: 1, to: 2, term: 5, prevIndex: 9, prevTerm: 4, commit: 8, entries: 64, lastIndex: 73 });
    assert.equal(s.bytes, append.length - HEADER_BYTES);
    assert.equal(s.partial, false);
    assert.equal(formatSummary(s), `RaftAppend from=1 to=2 term=5 prevIndex=9 prevTerm=4 commit=8 entries=64 lastIndex=73 bytes=${s.bytes}`);
  });

  it('cope with a body cut anywhere: keep what is there, say partial', () => {
    for (let cut = 0; cut <= 60; cut++) {
      const [s] = summarizeCaptured(append.subarray(0, HEADER_BYTES + cut));
      assert.ok(s !== undefined);
      assert.equal(s.partial, true, `cut ${cut}`);
      assert.equal(s.malformed, false);
      assert.equal(s.bytes, append.length - HEADER_BYTES);
      if (cut >= 16) assert.equal(s.fields.term, 5);
      if (cut >= 44) assert.equal(s.fields.entries, 64);
    }
    assert.equal(summarizeCaptured(append.subarray(0, 5))[0]?.name, 'fragment');
  });

  it('summarise every message, request and response without throwing', () => {
    const frames = [
      ...sampleMessages().map((m) => encodeRaft(m)),
      encodeRaftBatch(sampleMessages()),
      ...sampleRequests().map((r) => encodeRequest(1, r)),
      ...sampleResponses().map((r) => encodeResponse(1, r)),
      encodeHello({ version: 1, replicaId: 1, groupId: 2 }),
      encodeHello({ version: 3, replicaId: 1, groupId: 2, process: 77 }),
      encodeChannel({ group: 2, from: 1, to: 5 }, encodeRaftBatch(sampleMessages())),
      encodeChannel({ group: 2, from: 5, to: 1 }, encodeResponse(3, { kind: 'error', error: { code: 'UNAVAILABLE', message: '' } })),
    ];
    for (const f of frames) {
      const [s] = summarizeCaptured(f);
      assert.ok(s !== undefined);
      assert.equal(s.partial, false, s.name);
      assert.equal(s.malformed, false, s.name);
      assert.ok(!s.name.startsWith('0x'), s.name);
      assert.ok(formatSummary(s).length > 0);
    }
  });

  it('walk several frames in one payload and expand batches and forwards', () => {
    const put = encodeRequest(4, { op: 'put', clientId: 10n, seq: 2, key: bytes('user:1'), value: bytes('x') });
    const fwd = encodeForward(8, { type: put[4]!, hops: 1, body: put.subarray(HEADER_BYTES) });
    const batch = encodeRaftBatch([
      { type: MsgType.Heartbeat, from: 1, to: 3, term: 2, commit: 7, round: 4 },
      { type: MsgType.TimeoutNow, from: 1, to: 3, term: 2 },
    ]);
    const ss = summarizeCaptured(Buffer.concat([put, fwd, batch]));
    assert.deepEqual(
      ss.map((s) => s.name),
      ['Put', 'Forward', 'RaftBatch'],
    );
    assert.equal(ss[0]?.requestId, 4);
    assert.equal(ss[0]?.fields.key, '"user:1"');
    assert.equal(ss[1]?.inner?.[0]?.name, 'Put');
    assert.deepEqual(
      ss[2]?.inner?.map((s) => s.name),
      ['RaftHeartbeat', 'RaftTimeoutNow'],
    );
    assert.equal(
      formatSummary(ss[1]!),
      'Forward #8 hops=1 bytes=31 [Put client=a seq=2 key="user:1" valueBytes=1 bytes=29]',
    );
  });

  it('a version 3 HELLO shows its process; cut inside it, the HELLO is partial', () => {
    const h = encodeHello({ version: 3, replicaId: 2, groupId: 7, process: 0x1234_5678_9abc });
    assert.equal(formatSummary(summarizeCaptured(h)[0]!), `Hello magic=4b565352 version=3 replica=2 group=7 process=${0x1234_5678_9abc} bytes=22`);
    const cut = summarizeCaptured(h.subarray(0, HEADER_BYTES + 18))[0]!;
    assert.deepEqual([cut.partial, cut.malformed, 'process' in cut.fields], [true, false, false]);
    assert.equal(formatSummary(summarizeCaptured(encodeHello({ version: 3, replicaId: 2, groupId: 7 }))[0]!), 'Hello magic=4b565352 version=3 replica=2 group=7 bytes=14');
  });

  it('a CHANNEL shows its ids, then the frame it carries as a forward shows its request', () => {
    const put = encodeRequest(0, { op: 'put', clientId: 10n, seq: 2, key: bytes('user:1'), value: bytes('x') });
    const fwd = encodeForward(8, { type: put[4]!, hops: 1, body: put.subarray(HEADER_BYTES) });
    const [s] = summarizeCaptured(encodeChannel({ group: 2, from: 1, to: 5 }, fwd));
    assert.equal(
      formatSummary(s!),
      'Channel group=2 from=1 to=5 bytes=52 [Forward #8 hops=1 bytes=31 [Put client=a seq=2 key="user:1" valueBytes=1 bytes=29]]',
    );
    const hb = encodeRaft({ type: MsgType.Heartbeat, from: 1, to: 5, term: 3, commit: 7, round: 2 });
    assert.equal(
      formatSummary(summarizeCaptured(encodeChannel({ group: 2, from: 1, to: 5 }, hb))[0]!),
      'Channel group=2 from=1 to=5 bytes=53 [RaftHeartbeat from=1 to=5 term=3 commit=7 round=2 bytes=32]',
    );
  });

  it('flag garbage: impossible lengths and bodies that do not parse', () => {
    assert.equal(summarizeCaptured(Buffer.from('ffffffff0100000000', 'hex'))[0]?.name, 'garbage');
    assert.equal(summarizeBody(0x45, new Uint8Array(60)).malformed, false);
    assert.equal(summarizeBody(0x45, new Uint8Array(10)).malformed, true);
    assert.equal(summarizeBody(0x99, new Uint8Array(3)).name, '0x99');
  });
});
