// Fuzzing every decoder with random and mutated input. Properties checked on each case:
//  - nothing escapes but FramingError / BadRequestError (summaries never throw at all);
//  - no frame body exceeds the decoder's limit;
//  - everything a decoder returns is bounded by its input: every byte field is a view inside the
//    body (no copies, so no allocation beyond the frame) and there are no more array elements than
//    body bytes.
// Seeded: the seed is printed; WIRE_SEED=<seed> replays a run, WIRE_FUZZ_ITERS scales it.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse } from '../../src/wire/client-codec.ts';
import { isWireError } from '../../src/wire/errors.ts';
import { decodeChannel, encodeChannel } from '../../src/wire/channel.ts';
import { decodeForward, encodeForward } from '../../src/wire/forward.ts';
import { FrameDecoder, HEADER_BYTES } from '../../src/wire/frame.ts';
import { decodeHello, encodeHello } from '../../src/wire/hello.ts';
import { summarizeBody, summarizeCaptured } from '../../src/wire/names.ts';
import { decodeRaft, decodeRaftBatch, decodeRaftFrame, encodeRaft, encodeRaftBatch } from '../../src/wire/raft-codec.ts';
import { Rng, sampleMessages, sampleRequests, sampleResponses, seedFromEnv } from './helpers.ts';

const SEED = seedFromEnv();
const ITERS = Number(process.env.WIRE_FUZZ_ITERS ?? 4000);
const MAX_FRAME = 64 * 1024;
console.log(`wire fuzz seed=${SEED} iters=${ITERS} (replay: WIRE_SEED=${SEED} node --import tsx --test test/wire/fuzz.test.ts)`);

type Decoder = (type: number, body: Uint8Array) => unknown;
const decoders: Record<string, Decoder> = {
  request: decodeRequest,
  response: decodeResponse,
  raft: decodeRaft,
  raftBatch: (_t, b) => decodeRaftBatch(b),
  raftFrame: decodeRaftFrame,
  hello: (_t, b) => decodeHello(b),
  channel: (_t, b) => {
    const c = decodeChannel(b);
    return [c, decodeRaftFrame(c.frame.type, c.frame.body)];
  },
  forward: (_t, b) => {
    const f = decodeForward(b);
    return [f, decodeRequest(f.type, f.body)];
  },
};

/** Walks a decoded value: byte fields must lie inside `body`; counts array elements. */
function checkBounded(v: unknown, body: Uint8Array, where: string): number {
  if (v instanceof Uint8Array) {
    assert.ok(
      v.length === 0 ||
        (v.buffer === body.buffer && v.byteOffset >= body.byteOffset && v.byteOffset + v.length <= body.byteOffset + body.length),
      `${where}: byte field is not a view into the body`,
    );
    return 0;
  }
  if (Array.isArray(v)) {
    let n = v.length;
    for (const x of v) n += checkBounded(x, body, where);
    return n;
  }
  if (v !== null && typeof v === 'object') {
    let n = 0;
    for (const x of Object.values(v)) n += checkBounded(x, body, where);
    return n;
  }
  return 0;
}

function hex(b: Uint8Array): string {
  const s = Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');
  return s.length > 400 ? `${s.slice(0, 400)}…` : s;
}

function decodeAll(type: number, body: Uint8Array, ctx: string): void {
  assert.ok(body.length <= MAX_FRAME - HEADER_BYTES, `${ctx}: body of ${body.length} above the limit`);
  for (const [name, dec] of Object.entries(decoders)) {
    let out: unknown;
    try {
      out = dec(type, body);
    } catch (e) {
      if (isWireError(e)) continue;
      assert.fail(`${ctx}: ${name} threw ${String(e)} on type 0x${type.toString(16)} body ${hex(body)}`);
    }
    const elements = checkBounded(out, body, `${ctx} ${name}`);
    assert.ok(elements <= body.length, `${ctx} ${name}: ${elements} array elements from ${body.length} bytes`);
  }
  try {
    summarizeBody(type, body);
    summarizeBody(type, body, body.length + 100);
  } catch (e) {
    assert.fail(`${ctx}: summarizeBody threw ${String(e)} on type 0x${type.toString(16)} body ${hex(body)}`);
  }
}

/** Like encodeFrame but without its checks, so type 0x00 can be sent too. */
function rawFrame(type: number, requestId: number, body: Uint8Array): Buffer {
  const b = Buffer.alloc(HEADER_BYTES + body.length);
  b.writeUInt32BE(5 + body.length, 0);
  b[4] = type;
  b.writeUInt32BE(requestId, 5);
  b.set(body, HEADER_BYTES);
  return b;
}

/** Feeds a stream in random chunks; decodes every frame; stops at a FramingError. */
function feed(rng: Rng, stream: Uint8Array, ctx: string): number {
  const d = new FrameDecoder({ maxFrameBytes: MAX_FRAME });
  let frames = 0;
  let pos = 0;
  try {
    while (pos < stream.length) {
      const n = 1 + rng.int(rng.next() < 0.5 ? 8 : 512);
      d.push(stream.subarray(pos, pos + n));
      pos += n;
      for (let f; (f = d.read()) !== null; frames++) decodeAll(f.type, f.body, ctx);
    }
  } catch (e) {
    if (!isWireError(e)) throw e;
    assert.equal(d.bufferedBytes, 0, `${ctx}: bytes kept after framing was lost`);
  }
  try {
    summarizeCaptured(stream, MAX_FRAME);
  } catch (e) {
    assert.fail(`${ctx}: summarizeCaptured threw ${String(e)} on ${hex(stream)}`);
  }
  return frames;
}

/** Valid frames of every kind, small enough to mutate many times. */
function corpus(): Buffer[] {
  const msgs = sampleMessages();
  const reqs = sampleRequests();
  const out = [
    ...msgs.map((m) => encodeRaft(m)),
    encodeRaftBatch(msgs.slice(0, 6)),
    ...reqs.map((r, i) => encodeRequest(i, r)),
    ...sampleResponses().map((r, i) => encodeResponse(i, r)),
    encodeHello({ version: 1, replicaId: 2, groupId: 3 }),
    encodeHello({ version: 3, replicaId: 2, groupId: 3, process: 0xabcdef }),
    encodeChannel({ group: 3, from: 1, to: 2 }, encodeRaftBatch(msgs.slice(0, 3))),
    encodeChannel({ group: 3, from: 2, to: 1 }, encodeRaft(msgs[0]!)),
  ];
  const put = out.find((b) => b[4] === 0x04)!;
  const fwd = encodeForward(9, { type: 0x04, hops: 0, body: put.subarray(HEADER_BYTES) });
  out.push(fwd, encodeChannel({ group: 3, from: 1, to: 2 }, fwd));
  return out.filter((b) => b.length < 8192);
}

const BOUNDARY_U32 = [0, 1, 4, 5, 6, 0x7f, 0xff, 0xffff, 0x1_0000, 0x7fff_ffff, 0xffff_ffff, MAX_FRAME - 4, MAX_FRAME - 3];

function mutate(rng: Rng, src: Uint8Array, keepFraming: boolean): Uint8Array {
  // With keepFraming the header stays valid and the length is fixed up, so the mutation reaches
  // the body decoders instead of stopping at the frame decoder.
  const from = keepFraming ? HEADER_BYTES : 0;
  let b = Buffer.from(src);
  const rounds = 1 + rng.int(4);
  for (let r = 0; r < rounds; r++) {
    const at = from + rng.int(Math.max(1, b.length - from));
    switch (rng.int(7)) {
      case 0: // flip a bit
        if (at < b.length) b[at]! ^= 1 << rng.int(8);
        break;
      case 1: // random byte
        if (at < b.length) b[at] = rng.int(256);
        break;
      case 2: // insert bytes
        b = Buffer.concat([b.subarray(0, at), rng.bytes(1 + rng.int(4)), b.subarray(at)]);
        break;
      case 3: // delete bytes
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + rng.int(4))]);
        break;
      case 4: // a boundary or huge u32 (lengths, counts)
        if (at + 4 <= b.length) b.writeUInt32BE(rng.pick(BOUNDARY_U32), at);
        break;
      case 5: // a huge u16 (key lengths, id counts)
        if (at + 2 <= b.length) b.writeUInt16BE(rng.pick([0, 1, 0xfffe, 0xffff]), at);
        break;
      case 6: // truncate
        b = b.subarray(0, at);
        break;
    }
  }
  if (keepFraming) {
    if (b.length < HEADER_BYTES) return src;
    b.writeUInt32BE(b.length - 4, 0);
  }
  return b;
}

describe(`wire fuzz (seed ${SEED})`, () => {
  it('random bytes into the frame decoder and every body decoder', () => {
    const rng = new Rng(SEED);
    for (let i = 0; i < ITERS / 4; i++) feed(rng, rng.bytes(rng.int(2000)), `seed ${SEED} random ${i}`);
  });

  it('random bodies under valid headers, with every type byte', () => {
    const rng = new Rng(SEED ^ 0x1111);
    for (let i = 0; i < ITERS; i++) {
      const type = i < 256 ? i : rng.int(256);
      // Mostly short bodies, some long, biased towards the zero bytes that make lengths small.
      const body = rng.bytes(rng.next() < 0.9 ? rng.int(64) : rng.int(4096));
      if (rng.next() < 0.5) for (let k = 0; k < body.length; k++) if (rng.next() < 0.6) body[k] = 0;
      feed(rng, rawFrame(type, rng.int(2 ** 32), body), `seed ${SEED} body ${i}`);
    }
  });

  it('mutated valid frames (flip, insert, delete, huge lengths, truncation)', () => {
    const rng = new Rng(SEED ^ 0x2222);
    const frames = corpus();
    let decoded = 0;
    for (let i = 0; i < ITERS; i++) {
      const n = 1 + rng.int(3);
      const parts: Uint8Array[] = [];
      for (let k = 0; k < n; k++) parts.push(mutate(rng, rng.pick(frames), rng.next() < 0.8));
      decoded += feed(rng, Buffer.concat(parts), `seed ${SEED} mutation ${i}`);
    }
    assert.ok(decoded > ITERS / 2, 'mutations should mostly keep framing, to reach the body decoders');
  });

  it('huge length prefixes never allocate: rejected with nothing buffered', () => {
    const rng = new Rng(SEED ^ 0x3333);
    for (let i = 0; i < 200; i++) {
      const d = new FrameDecoder({ maxFrameBytes: MAX_FRAME });
      const len = MAX_FRAME - 3 + rng.int(2 ** 32 - MAX_FRAME);
      const head = Buffer.alloc(4);
      head.writeUInt32BE(len >>> 0);
      d.push(head);
      assert.throws(() => d.read(), isWireError);
      assert.equal(d.bufferedBytes, 0);
    }
  });
});
