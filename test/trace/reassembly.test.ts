import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Frame } from '../../src/trace/frames.ts';
import { TracePipeline, type TracePipelineOptions } from '../../src/trace/pipeline.ts';
import type { StreamEvent } from '../../src/trace/reassembly.ts';
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, type SegmentRecord } from '../../src/trace/source.ts';
import { CLIENT, SERVER, concatBytes, encodeFrame, expected, makeFrames, seg, summary } from './helpers/synth.ts';

const ISN = 1000;

function run(records: readonly SegmentRecord[], opts: Partial<TracePipelineOptions> = {}) {
  const frames: Frame[] = [];
  const events: StreamEvent[] = [];
  const p = new TracePipeline({ onFrame: (f) => frames.push(f), onStreamEvent: (e) => events.push(e), ...opts });
  p.push(records);
  p.flush();
  return { frames, events, stats: p.reassemblyStats, frameStats: p.frameStats };
}

const syn = (isn = ISN) => seg({ seq: isn, flags: TCP_SYN });
const data = (isn: number, off: number, bytes: Uint8Array, ts = 0n) =>
  seg({ seq: isn + 1 + off, payload: bytes, ts, flags: TCP_ACK });

describe('reassembly', () => {
  const sent = makeFrames(5, 10, 7);
  const stream = concatBytes(sent.map(encodeFrame));
  const want = expected(sent);
  const n = stream.length;
  const piece = (a: number, b: number) => data(ISN, a, stream.subarray(a, b));

  it('decodes a stream split into three segments at every pair of byte boundaries', () => {
    for (let i = 1; i < n; i++) {
      for (let j = i; j < n; j++) {
        const { frames } = run([syn(), piece(0, i), piece(i, j), piece(j, n)]);
        assert.deepEqual(frames.map(summary), want, `cuts ${i},${j}`);
      }
    }
  });

  it('decodes every arrival order of those segments', () => {
    const orders = [
      [0, 1, 2],
      [0, 2, 1],
      [1, 0, 2],
      [1, 2, 0],
      [2, 0, 1],
      [2, 1, 0],
    ];
    for (let i = 1; i < n; i += 3) {
      for (let j = i; j < n; j += 2) {
        const pieces = [piece(0, i), piece(i, j), piece(j, n)];
        for (const order of orders) {
          const { frames, stats } = run([syn(), ...order.map((k) => pieces[k] as SegmentRecord)]);
          assert.deepEqual(frames.map(summary), want, `cuts ${i},${j} order ${order}`);
          assert.equal(stats.lostGapBytes, 0);
        }
      }
    }
  });

  it('drops retransmitted and overlapping bytes (merged segments)', () => {
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j <= n; j++) {
        // [0, j) then [i, n): the overlap [i, j) arrives twice.
        const a = run([syn(), piece(0, j), piece(i, n)]);
        assert.deepEqual(a.frames.map(summary), want, `overlap ${i}..${j}`);
        assert.equal(a.stats.duplicateBytes, j - i);
        // The later half first, then a merged retransmission covering everything.
        const b = run([syn(), piece(i, n), piece(0, j), piece(0, n)]);
        assert.deepEqual(b.frames.map(summary), want, `reordered overlap ${i}..${j}`);
      }
    }
  });

  it("counts lo's second copy of each segment as duplicate and decodes once", () => {
    const cuts = [0, 3, 11, 20, 27, 40, n];
    const segs: SegmentRecord[] = [];
    for (let k = 0; k + 1 < cuts.length; k++) segs.push(piece(cuts[k] as number, cuts[k + 1] as number));
    // egress k, then ingress k-1 (the kernel hands the egress copy to ingress later)
    const records: SegmentRecord[] = [syn(), { ...syn(), direction: 'ingress' }];
    segs.forEach((s, k) => {
      records.push({ ...s, direction: 'egress' });
      if (k > 0) records.push({ ...(segs[k - 1] as SegmentRecord), direction: 'ingress' });
    });
    records.push({ ...(segs.at(-1) as SegmentRecord), direction: 'ingress' });
    const { frames, stats } = run(records);
    assert.deepEqual(frames.map(summary), want);
    assert.equal(stats.duplicateBytes, n);
  });

  it("fills a record lost on one side of lo's double view from the other copy", () => {
    const a = piece(0, 20);
    const b = piece(20, 45);
    const c = piece(45, n);
    // egress copy of b was dropped by the ring buffer
    const { frames, stats } = run([
      syn(),
      { ...a, direction: 'egress' },
      { ...c, direction: 'egress' },
      { ...a, direction: 'ingress' },
      { ...b, direction: 'ingress' },
      { ...c, direction: 'ingress' },
    ]);
    assert.deepEqual(frames.map(summary), want);
    assert.equal(stats.lostGapBytes, 0);
  });

  it('handles sequence numbers wrapping past 2^32', () => {
    const isn = 0xffff_fff0;
    for (let i = 1; i < n; i++) {
      const recs = [syn(isn), data(isn, 0, stream.subarray(0, i)), data(isn, i, stream.subarray(i))];
      assert.deepEqual(run(recs).frames.map(summary), want, `cut ${i}`);
      // and out of order across the wrap
      assert.deepEqual(run([recs[0], recs[2], recs[1]] as SegmentRecord[]).frames.map(summary), want);
    }
  });
});

describe('reassembly: gaps', () => {
  const sent = makeFrames(8, 30, 3);
  const encoded = sent.map(encodeFrame);
  const stream = concatBytes(encoded);
  const starts: number[] = [];
  encoded.reduce((at, f) => (starts.push(at), at + f.length), 0);
  const at = (k: number) => starts[k] as number;

  it('skips a lost segment that covered whole frames and resyncs at the next frame', () => {
    // one segment per frame; frame 3's segment never arrives
    const recs = [syn(), ...encoded.map((f, k) => data(ISN, at(k), f))].filter((_, k) => k !== 4);
    const { frames, stats, frameStats, events } = run(recs);
    assert.deepEqual(
      frames.map(summary),
      expected(sent.filter((_, k) => k !== 3)),
    );
    assert.equal(stats.lostGapBytes, (encoded[3] as Uint8Array).length);
    assert.ok(events.some((e) => e.kind === 'gap' && e.cause === 'lost'));
    assert.equal(frames.find((f) => f.requestId === sent[4]?.requestId)?.resynced, true);
    assert.equal(frameStats.undecodableBytes, 0);
  });

  it('keeps sync when a lost segment lies inside one frame body', () => {
    const big = sent.findIndex((f) => f.body.length >= 10);
    const s = at(big) + 12;
    const e = at(big) + 16;
    const { frames, frameStats } = run([syn(), data(ISN, 0, stream.subarray(0, s)), data(ISN, e, stream.subarray(e))]);
    assert.deepEqual(
      frames.map((f) => [f.type, f.requestId]),
      sent.map((f) => [f.type, f.requestId]),
    );
    const cut = frames[big] as Frame;
    assert.equal(cut.truncated, true);
    assert.deepEqual([...cut.bodyPrefix], [...(sent[big] as { body: Uint8Array }).body.subarray(0, 3)]);
    assert.equal(frameStats.resyncs, 0);
  });

  it('counts bytes it cannot attribute when a gap cuts through headers', () => {
    // lose [at(2)+4, at(5)+3): frame 2's header half, frames 3-4, frame 5's length
    const s = at(2) + 4;
    const e = at(5) + 3;
    const { frames, frameStats } = run([syn(), data(ISN, 0, stream.subarray(0, s)), data(ISN, e, stream.subarray(e))]);
    assert.deepEqual(frames.map(summary), expected([sent[0], sent[1], sent[6], sent[7]] as typeof sent));
    // frame 2's 4 captured header bytes, and frame 5's remaining bytes
    assert.equal(frameStats.undecodableBytes, 4 + (at(6) - e));
  });

  it('declares a hole lost when the out-of-order buffer is full', () => {
    const recs = [syn(), ...encoded.map((f, k) => data(ISN, at(k), f))].filter((_, k) => k !== 2);
    const frames: Frame[] = [];
    const p = new TracePipeline({ onFrame: (f) => frames.push(f), reassembly: { maxBufferedSegments: 3 } });
    p.push(recs);
    // without flush: the hole was given up because frames 2..5 overflowed the buffer
    assert.deepEqual(frames.map(summary), expected(sent.filter((_, k) => k !== 1)));
    assert.equal(p.reassemblyStats.lostGapBytes, (encoded[1] as Uint8Array).length);
  });

  it('declares a hole lost once it is older than the hole timeout (record time)', () => {
    const frames: Frame[] = [];
    const p = new TracePipeline({ onFrame: (f) => frames.push(f), reassembly: { holeTimeoutNs: 1000n } });
    p.push([syn(), data(ISN, 0, encoded[0] as Uint8Array, 10n), data(ISN, at(2), encoded[2] as Uint8Array, 20n)]);
    assert.equal(frames.length, 1);
    p.push([data(ISN, at(3), encoded[3] as Uint8Array, 1019n)]);
    assert.equal(frames.length, 1, 'hole is 999ns old: still waiting');
    p.push([data(ISN, at(4), encoded[4] as Uint8Array, 1020n)]);
    assert.deepEqual(frames.map(summary), expected([sent[0], sent[2], sent[3], sent[4]] as typeof sent));
  });

  it('keeps frame boundaries through snap-length cuts inside bodies', () => {
    // one segment per frame, each captured only up to 12 bytes
    const recs = [syn(), ...encoded.map((f, k) => seg({ seq: ISN + 1 + at(k), payload: f.subarray(0, 12), payloadLength: f.length }))];
    const { frames, stats, frameStats } = run(recs);
    assert.deepEqual(
      frames.map((f) => [f.type, f.requestId, f.length, Buffer.from(f.bodyPrefix).toString('hex')]),
      sent.map((f) => [f.type, f.requestId, 5 + f.body.length, Buffer.from(f.body.subarray(0, 3)).toString('hex')]),
    );
    assert.equal(stats.snapGapBytes, stream.length - 12 * encoded.length + encoded.filter((f) => f.length < 12).reduce((s, f) => s + 12 - f.length, 0));
    assert.equal(frameStats.resyncs, 0);
    assert.ok(frames.filter((f) => f.truncated).length > 0);
  });

  it('loses frames hidden by a snap cut of a coalesced segment and resyncs after it', () => {
    const cap = at(2) + 5; // frames 0, 1 whole; frame 2 header half
    const cut = at(5);
    const recs = [
      syn(),
      seg({ seq: ISN + 1, payload: stream.subarray(0, cap), payloadLength: cut }),
      data(ISN, cut, stream.subarray(cut)),
    ];
    const { frames, frameStats } = run(recs);
    assert.deepEqual(frames.map(summary), expected([sent[0], sent[1], sent[5], sent[6], sent[7]] as typeof sent));
    assert.equal(frames[2]?.resynced, true);
    assert.equal(frameStats.undecodableBytes, 5);
  });
});

describe('reassembly: connection lifecycle', () => {
  const sent = makeFrames(3, 8, 11);
  const bytes = concatBytes(sent.map(encodeFrame));

  it('closes on FIN after the last byte and ignores late copies', () => {
    const fin = seg({ seq: ISN + 1 + bytes.length, flags: TCP_FIN | TCP_ACK });
    const { frames, events, stats } = run([syn(), fin, data(ISN, 0, bytes), data(ISN, 0, bytes), fin]);
    assert.deepEqual(frames.map(summary), expected(sent));
    assert.deepEqual(
      events.map((e) => e.kind + (e.kind === 'close' ? `:${e.cause}` : '')),
      ['open', 'data', 'close:fin'],
    );
    assert.equal(stats.duplicateBytes, bytes.length);
  });

  it('resets on RST and on a new SYN of the same 4-tuple', () => {
    const isn2 = 77_000;
    const { frames, events } = run([
      syn(),
      data(ISN, 0, bytes.subarray(0, 12)),
      // the rest was sent before the RST, but its first copy was lost
      seg({ seq: ISN + 1 + bytes.length, flags: TCP_RST }),
      data(ISN, 12, bytes.subarray(12)), // a late copy: stale after the reset
      syn(isn2),
      data(isn2, 0, bytes),
    ]);
    assert.deepEqual(frames.map(summary).slice(-3), expected(sent));
    assert.deepEqual(
      events.filter((e) => e.kind === 'open' || e.kind === 'close').map((e) => (e.kind === 'close' ? e.cause : e.kind)),
      ['open', 'rst', 'open', 'flush'],
    );
  });

  it('starts a stream seen mid-connection unaligned and finds the first whole frame', () => {
    const first = encodeFrame(sent[0] as (typeof sent)[0]);
    const { frames, frameStats } = run([data(ISN, 4, bytes.subarray(4))]);
    assert.deepEqual(frames.map(summary), expected(sent.slice(1)));
    assert.equal(frameStats.undecodableBytes, first.length - 4);
  });

  it('keeps the two directions of a connection apart', () => {
    const reply = makeFrames(2, 5, 99);
    const rbytes = concatBytes(reply.map(encodeFrame));
    const { frames } = run([
      syn(),
      seg({ seq: 5000, flags: TCP_SYN | TCP_ACK, src: SERVER, dst: CLIENT }),
      data(ISN, 0, bytes),
      seg({ seq: 5001, payload: rbytes, src: SERVER, dst: CLIENT }),
    ]);
    const byDir = (port: number) => frames.filter((f) => f.flow.src.port === port).map(summary);
    assert.deepEqual(byDir(CLIENT.port), expected(sent));
    assert.deepEqual(byDir(SERVER.port), expected(reply));
  });

  it('evicts the least recently used flow beyond maxFlows', () => {
    const { events, stats } = run(
      [0, 1, 2].map((k) => seg({ seq: 1, flags: TCP_SYN, src: { addr: '127.0.0.1', port: 41000 + k } })),
      { reassembly: { maxFlows: 2 } },
    );
    assert.equal(stats.flowsEvicted, 1);
    assert.deepEqual(
      events.filter((e) => e.kind === 'close').map((e) => [e.flow.src.port, e.kind === 'close' && e.cause]),
      [
        [41000, 'evicted'],
        [41001, 'flush'],
        [41002, 'flush'],
      ],
    );
  });
});
