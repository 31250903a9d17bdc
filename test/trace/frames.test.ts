import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FrameSplitter, type Frame, type FrameOptions } from '../../src/trace/frames.ts';
import type { Flow, StreamEvent } from '../../src/trace/reassembly.ts';
import { CLIENT, SERVER, concatBytes, encodeFrame, expected, makeFrames, summary } from './helpers/synth.ts';

const flow: Flow = { key: 'k', src: CLIENT, dst: SERVER };

/** Feeds `chunks` (bytes, or a number for a gap of that many bytes) after an open. */
function split(chunks: readonly (Uint8Array | number)[], aligned: boolean, opts: FrameOptions = {}) {
  const frames: Frame[] = [];
  const s = new FrameSplitter(flow, (f) => frames.push(f), opts);
  const events: StreamEvent[] = [{ kind: 'open', flow, ts: 0n, aligned }];
  let offset = 0;
  for (const c of chunks) {
    if (typeof c === 'number') {
      events.push({ kind: 'gap', flow, ts: 0n, offset, length: c, cause: 'lost' });
      offset += c;
    } else {
      events.push({ kind: 'data', flow, ts: 0n, offset, bytes: c });
      offset += c.length;
    }
  }
  events.push({ kind: 'close', flow, ts: 0n, cause: 'fin' });
  for (const e of events) s.push(e);
  return { frames, stats: s.stats };
}

describe('frames', () => {
  const sent = makeFrames(6, 40, 5);
  const encoded = sent.map(encodeFrame);
  const stream = concatBytes(encoded);

  it('splits an aligned stream delivered one byte at a time', () => {
    const bytes = [...stream].map((b) => Uint8Array.of(b));
    const { frames, stats } = split(bytes, true);
    assert.deepEqual(frames.map(summary), expected(sent));
    assert.deepEqual(
      frames.map((f) => f.offset),
      encoded.map((_, k) => encoded.slice(0, k).reduce((n, f) => n + f.length, 0)),
    );
    assert.equal(stats.undecodableBytes, 0);
  });

  it('skips garbage in front of an unaligned stream and counts it', () => {
    for (let cut = 1; cut < (encoded[0] as Uint8Array).length; cut++) {
      const { frames, stats } = split([stream.subarray(cut)], false);
      assert.deepEqual(frames.map(summary), expected(sent.slice(1)), `cut ${cut}`);
      assert.equal(stats.undecodableBytes, (encoded[0] as Uint8Array).length - cut);
      assert.equal(frames[0]?.resynced, true);
    }
  });

  it('resyncs after garbage where a header should be', () => {
    const garbage = Uint8Array.from([0xff, 0xfe, 0x00, 0x00, 0x00, 0x01, 0x02, 0xaa, 0xbb, 0xcc, 0xdd]);
    const { frames, stats } = split([encoded[0] as Uint8Array, garbage, ...encoded.slice(1)], true);
    assert.deepEqual(frames.map(summary), expected(sent));
    assert.equal(stats.resyncs, 1);
    assert.equal(stats.undecodableBytes, garbage.length);
  });

  it('uses the type check to reject look-alike headers', () => {
    // looks like an empty frame of type 0x63 unless types are checked
    const fake = Uint8Array.from([0x00, 0x00, 0x00, 0x05, 0x63, 0xff, 0xff, 0xff, 0xff]);
    const input = [fake, ...encoded];
    const loose = split(input, false, { resyncConfirm: 1 });
    assert.notDeepEqual(loose.frames.map(summary), expected(sent));
    const strict = split(input, false, { resyncConfirm: 1, isPlausibleType: (t) => t >= 1 && t <= 20 });
    assert.deepEqual(strict.frames.map(summary), expected(sent));
  });

  it('keeps sync across a gap inside a body, loses it across a header', () => {
    const a = encoded[1] as Uint8Array;
    const inBody = split([encoded[0] as Uint8Array, a.subarray(0, 10), a.length - 10, ...encoded.slice(2)], true);
    assert.deepEqual(
      inBody.frames.map((f) => f.requestId),
      sent.map((f) => f.requestId),
    );
    assert.equal(inBody.frames[1]?.truncated, a.length - 9 > 1);
    assert.equal(inBody.stats.resyncs, 0);

    const overHeader = split([encoded[0] as Uint8Array, a.length + 3, (encoded[2] as Uint8Array).subarray(3), ...encoded.slice(3)], true);
    assert.deepEqual(overHeader.frames.map(summary), expected([sent[0], ...sent.slice(3)] as typeof sent));
  });

  it('supports length fields that count the body only or the whole frame', () => {
    for (const [covers, adjust] of [
      ['body', -5],
      ['all', 4],
    ] as const) {
      const bytes = encoded.map((f) => {
        const c = f.slice();
        new DataView(c.buffer).setUint32(0, f.length - 4 + adjust);
        return c;
      });
      const { frames } = split([concatBytes(bytes)], true, { lengthCovers: covers });
      assert.deepEqual(frames.map(summary), expected(sent), covers);
    }
  });

  it('keeps at most maxBodyPrefix body bytes without calling the frame truncated', () => {
    const { frames } = split([stream], true, { maxBodyPrefix: 4 });
    assert.deepEqual(frames.map(summary), expected(sent, 4));
    assert.ok(frames.every((f) => !f.truncated));
  });

  it('resyncs when every segment is cut by the snap length, using where the cut segment ends', () => {
    // unaligned start; each frame is one segment of which only 12 bytes were captured
    const chunks = encoded.flatMap((f) => (f.length > 12 ? [f.subarray(0, 12), f.length - 12] : [f]));
    const { frames, stats } = split(chunks, false);
    assert.deepEqual(
      frames.map((f) => [f.type, f.requestId, f.length]),
      sent.map((f) => [f.type, f.requestId, 5 + f.body.length]),
    );
    assert.equal(stats.resyncs, 1);
  });

  it('takes a lone candidate once the resync window is full', () => {
    const big = encodeFrame({ type: 3, requestId: 9, body: new Uint8Array(300).fill(7) });
    const { frames } = split([Uint8Array.of(1, 2, 3), big.subarray(0, 200), big.subarray(200)], false, {
      resyncWindow: 128,
    });
    assert.deepEqual(frames.map((f) => [f.type, f.requestId, f.length]), [[3, 9, 305]]);
  });

  it('reports a frame cut by the end of the stream as truncated', () => {
    const { frames, stats } = split([stream.subarray(0, (encoded[0] as Uint8Array).length + 10)], true);
    assert.equal(frames.length, 2);
    assert.equal(frames[1]?.truncated, true);
    assert.equal(stats.truncatedFrames, 1);
  });
});
