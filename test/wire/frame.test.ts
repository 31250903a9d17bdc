import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FramingError } from '../../src/wire/errors.ts';
import {
  DEFAULT_MAX_FRAME_BYTES,
  encodeFrame,
  type Frame,
  FrameDecoder,
  HEADER_BYTES,
  readFrameHeader,
} from '../../src/wire/frame.ts';

function drain(d: FrameDecoder): Frame[] {
  const out: Frame[] = [];
  for (let f; (f = d.read()) !== null; ) out.push(f);
  return out;
}

/** `view` lies inside `chunk`'s bytes (shares its memory). */
function within(view: Uint8Array, chunk: Uint8Array): boolean {
  return (
    view.buffer === chunk.buffer &&
    view.byteOffset >= chunk.byteOffset &&
    view.byteOffset + view.length <= chunk.byteOffset + chunk.length
  );
}

const plain = (fs: Frame[]) => fs.map((f) => ({ type: f.type, requestId: f.requestId, body: Buffer.from(f.body).toString('hex') }));

function sampleStream(): { bytes: Buffer; frames: Frame[] } {
  const frames: Frame[] = [
    { type: 0x01, requestId: 0, body: new Uint8Array(0) },
    { type: 0x45, requestId: 0xffff_ffff, body: Uint8Array.from([1, 2, 3]) },
    { type: 0x80, requestId: 7, body: new Uint8Array(300).map((_, i) => i) },
    { type: 0xff, requestId: 1, body: Uint8Array.from([0xff, 0, 0xff, 0, 9]) },
  ];
  return { bytes: Buffer.concat(frames.map((f) => encodeFrame(f.type, f.requestId, f.body))), frames };
}

describe('frame encoding', () => {
  it('is [u32 length = 5 + body][u8 type][u32 requestId][body], big-endian', () => {
    const f = encodeFrame(0x03, 0x0102_0304, Uint8Array.from([0xaa, 0xbb]));
    assert.equal(f.toString('hex'), '00000007' + '03' + '01020304' + 'aabb');
    assert.deepEqual(readFrameHeader(f), { length: 7, type: 3, requestId: 0x0102_0304 });
    assert.equal(readFrameHeader(f.subarray(0, HEADER_BYTES - 1)), null);
  });
});

describe('FrameDecoder', () => {
  it('returns a frame inside one chunk as a view of it (no copy)', () => {
    const chunk = encodeFrame(0x04, 9, Uint8Array.from([1, 2, 3, 4]));
    const d = new FrameDecoder();
    d.push(chunk);
    const f = d.read();
    assert.ok(f !== null);
    assert.ok(within(f.body, chunk));
    assert.equal(f.body.byteOffset, chunk.byteOffset + HEADER_BYTES);
    assert.equal(d.read(), null);
    assert.equal(d.bufferedBytes, 0);
  });

  it('decodes merged frames from one chunk', () => {
    const { bytes, frames } = sampleStream();
    const d = new FrameDecoder();
    d.push(bytes);
    assert.deepEqual(plain(drain(d)), plain(frames));
  });

  it('decodes a stream fed byte by byte', () => {
    const { bytes, frames } = sampleStream();
    const d = new FrameDecoder();
    const got: Frame[] = [];
    for (let i = 0; i < bytes.length; i++) {
      d.push(bytes.subarray(i, i + 1));
      got.push(...drain(d));
    }
    assert.deepEqual(plain(got), plain(frames));
    assert.equal(d.bufferedBytes, 0);
  });

  it('decodes the stream split at every point (two and three chunks)', () => {
    const { bytes, frames } = sampleStream();
    for (let i = 0; i <= bytes.length; i++) {
      const d = new FrameDecoder();
      d.push(bytes.subarray(0, i));
      const got = drain(d);
      d.push(bytes.subarray(i));
      got.push(...drain(d));
      assert.deepEqual(plain(got), plain(frames), `split at ${i}`);
    }
    for (let i = 0; i <= bytes.length; i += 3) {
      for (let j = i; j <= bytes.length; j += 5) {
        const d = new FrameDecoder();
        d.push(bytes.subarray(0, i));
        d.push(bytes.subarray(i, j)); // pushed without reading in between: chunks just queue
        d.push(bytes.subarray(j));
        assert.deepEqual(plain(drain(d)), plain(frames), `split at ${i},${j}`);
      }
    }
  });

  it('accepts a frame of exactly maxFrameBytes and rejects one byte more', () => {
    const max = 1000;
    const d = new FrameDecoder({ maxFrameBytes: max });
    d.push(encodeFrame(1, 1, new Uint8Array(max - HEADER_BYTES)));
    assert.equal(d.read()?.body.length, max - HEADER_BYTES);
    d.push(encodeFrame(1, 2, new Uint8Array(max - HEADER_BYTES + 1)).subarray(0, 4));
    assert.throws(
      () => d.read(),
      (e) => e instanceof FramingError && e.code === 'FRAME_TOO_LARGE' && e.length === max - 4 + 1,
    );
  });

  it('rejects a huge length prefix as soon as the prefix is in, keeping nothing', () => {
    const d = new FrameDecoder();
    d.push(Uint8Array.from([0xff, 0xff]));
    assert.equal(d.read(), null);
    d.push(Uint8Array.from([0xff, 0xff, 0x01]));
    assert.throws(() => d.read(), FramingError);
    assert.equal(d.bufferedBytes, 0);
    // Framing is lost for good: later bytes are dropped and every read fails again.
    d.push(encodeFrame(1, 1, new Uint8Array(0)));
    assert.equal(d.bufferedBytes, 0);
    assert.throws(() => d.read(), FramingError);
  });

  it('rejects a length below type + requestId', () => {
    for (const len of [0, 1, 4]) {
      const d = new FrameDecoder();
      d.push(Uint8Array.from([0, 0, 0, len, 1, 0, 0, 0, 0]));
      assert.throws(() => d.read(), (e) => e instanceof FramingError && e.code === 'FRAME_TOO_SHORT');
    }
  });

  it('delivers the frames before a bad header, then fails', () => {
    const good = encodeFrame(2, 5, Uint8Array.from([1]));
    const d = new FrameDecoder();
    d.push(Buffer.concat([good, Buffer.from('ffffffff', 'hex')]));
    assert.equal(d.read()?.requestId, 5);
    assert.throws(() => d.read(), FramingError);
  });

  it('refuses to encode type 0x00 or a request id outside u32', () => {
    assert.throws(() => encodeFrame(0, 1, new Uint8Array(0)), RangeError);
    assert.throws(() => encodeFrame(0x100, 1, new Uint8Array(0)), RangeError);
    assert.throws(() => encodeFrame(1, 2 ** 32, new Uint8Array(0)), RangeError);
    assert.throws(() => encodeFrame(1, -1, new Uint8Array(0)), RangeError);
  });

  it('has a default limit of 4 MiB + 64 KiB', () => {
    assert.equal(new FrameDecoder().maxFrameBytes, DEFAULT_MAX_FRAME_BYTES);
    assert.equal(DEFAULT_MAX_FRAME_BYTES, 4 * 1024 * 1024 + 64 * 1024);
  });

  it('copies a straddling frame once and keeps later frames zero-copy', () => {
    const a = encodeFrame(1, 1, new Uint8Array(10).fill(1));
    const b = encodeFrame(1, 2, new Uint8Array(10).fill(2));
    const d = new FrameDecoder();
    d.push(a.subarray(0, 5));
    assert.equal(d.read(), null);
    const second = Buffer.concat([a.subarray(5), b]);
    d.push(second);
    const fa = d.read();
    const fb = d.read();
    assert.ok(fa !== null && fb !== null);
    // Small Buffers share a pool ArrayBuffer, so compare byte ranges, not just .buffer.
    assert.ok(!within(fa.body, second) && !within(fa.body, a));
    assert.ok(within(fb.body, second));
    assert.deepEqual([...fa.body], new Array(10).fill(1));
    assert.deepEqual([...fb.body], new Array(10).fill(2));
  });
  it('copies runs of tiny chunks into blocks: a stream cut into 1-byte pieces queues few chunks', () => {
    // Each queued chunk costs hundreds of bytes beyond its own: 4 MiB of 1-byte pieces must not be
    // 4M chunks (a WebSocket client can send them as 1-byte messages).
    const body = Buffer.alloc(200_000).map((_, i) => i * 7);
    const wire = encodeFrame(1, 9, body);
    const d = new FrameDecoder();
    let most = 0;
    for (let i = 0; i < wire.length - 1; i++) {
      d.push(wire.subarray(i, i + 1));
      assert.equal(d.read(), null);
      most = Math.max(most, d.queuedChunks);
    }
    assert.equal(d.bufferedBytes, wire.length - 1);
    assert.ok(most <= 64 + Math.ceil(wire.length / (16 * 1024)), `${most} chunks queued for ${wire.length} bytes`);
    d.push(wire.subarray(wire.length - 1));
    const f = d.read();
    assert.ok(f !== null);
    assert.equal(f.requestId, 9);
    assert.ok(Buffer.from(f.body).equals(body));
    assert.equal(d.queuedChunks, 0);
    assert.equal(d.read(), null);
  });

  it('frames handed out from a block stay intact while more tiny chunks arrive', () => {
    const frames = Array.from({ length: 400 }, (_, i) => encodeFrame(1, i, Buffer.alloc(i % 5, i)));
    const wire = Buffer.concat(frames);
    const d = new FrameDecoder();
    const got: Frame[] = [];
    let views = 0;
    for (let i = 0; i < wire.length; i++) {
      d.push(Uint8Array.from([wire[i]!])); // fresh 1-byte chunks, read now and then: frames lie in a block
      if (i % 100 === 99) {
        const fs = drain(d);
        views += fs.filter((f) => f.body.buffer.byteLength >= 16 * 1024).length;
        got.push(...fs);
      }
    }
    got.push(...drain(d));
    assert.ok(views > 100, `${views} frames were views of a block`);
    assert.deepEqual(
      plain(got),
      frames.map((_, i) => ({ type: 1, requestId: i, body: Buffer.alloc(i % 5, i).toString('hex') })),
    );
  });

  it('tiny and large chunks mixed: the bytes come out in order at every split', () => {
    const { bytes, frames } = sampleStream();
    const wire = Buffer.concat(Array.from({ length: 30 }, () => bytes));
    for (let seed = 1; seed <= 20; seed++) {
      const d = new FrameDecoder();
      const got: Frame[] = [];
      let x = seed;
      for (let i = 0; i < wire.length; ) {
        x = (x * 1103515245 + 12345) % 2 ** 31;
        const n = x % 10 === 0 ? 1500 : 1 + (x % 3);
        d.push(wire.subarray(i, i + n));
        i += n;
        if (x % 7 === 0) got.push(...drain(d));
      }
      got.push(...drain(d));
      assert.deepEqual(plain(got), plain(Array.from({ length: 30 }, () => frames).flat()), `seed ${seed}`);
    }
  });
});
