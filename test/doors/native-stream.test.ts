// NativeStream (the protocol behind the WebSocket door) with a fake transport: answers matched by
// request id, replies coalesced per turn, back-pressure (holds input while the transport is full,
// resumes on drain), the bound on held input, and bad frames.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NativeStream, WS_CLOSE, type NativeSink } from '../../src/doors/native-stream.ts';
import { FrameDecoder, decodeResponse, encodeFrame, encodeRequest, type Request, type Response } from '../../src/wire/index.ts';
import { MemoryExecutor } from './memory-executor.ts';

class FakeSink implements NativeSink {
  buffered = 0;
  messages: Buffer[] = [];
  closedWith: { code: number; reason: string } | undefined;
  private readonly decoder = new FrameDecoder();
  readonly responses: { id: number; res: Response }[] = [];

  send(bytes: Uint8Array): void {
    this.messages.push(Buffer.from(bytes));
    this.decoder.push(Buffer.from(bytes));
    for (let f = this.decoder.read(); f !== null; f = this.decoder.read()) this.responses.push({ id: f.requestId, res: decodeResponse(f.type, f.body) });
  }

  bufferedAmount(): number {
    return this.buffered;
  }

  close(code: number, reason: string): void {
    this.closedWith = { code, reason };
  }
}

const enc = new TextEncoder();
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await tick();
}

function frames(reqs: Request[], firstId = 1): Buffer {
  return Buffer.concat(reqs.map((r, i) => encodeRequest(firstId + i, r)));
}

describe('NativeStream', () => {
  it('answers pipelined requests by id, coalescing the answers of one turn into one message', async () => {
    const exec = new MemoryExecutor();
    const sink = new FakeSink();
    const s = new NativeStream(exec, sink);
    const bytes = frames([{ op: 'put', key: enc.encode('a'), value: enc.encode('1'), clientId: 0n, seq: 0 }, { op: 'ping' }, { op: 'get', key: enc.encode('zz'), consistency: 'stale' }]);
    s.push(bytes.subarray(0, 7)); // frames may straddle messages
    s.push(bytes.subarray(7));
    await settle();
    assert.deepEqual(
      sink.responses.map((r) => [r.id, r.res.kind]),
      [
        [1, 'ok'],
        [2, 'ok'],
        [3, 'value'],
      ],
    );
    assert.equal(sink.messages.length, 1);
  });

  it('holds input while the transport is full, and resumes when it drains', async () => {
    const exec = new MemoryExecutor();
    const sink = new FakeSink();
    const s = new NativeStream(exec, sink, { softBufferedBytes: 100 });
    sink.buffered = 1000;
    s.push(frames(Array.from({ length: 10 }, (): Request => ({ op: 'ping' }))));
    await settle();
    assert.equal(sink.responses.length, 0);
    assert.equal(exec.seen.length, 0);
    assert.equal(s.pauses, 1);
    sink.buffered = 0;
    s.drained();
    await settle();
    assert.equal(sink.responses.length, 10);
  });

  it('caps requests in flight', async () => {
    const exec = new MemoryExecutor();
    exec.delayMs = 1;
    const sink = new FakeSink();
    const s = new NativeStream(exec, sink, { maxInFlight: 3 });
    s.push(frames(Array.from({ length: 10 }, (): Request => ({ op: 'ping' }))));
    assert.equal(exec.seen.length, 3);
    while (sink.responses.length < 10) await new Promise((r) => setTimeout(r, 2));
    assert.deepEqual(
      sink.responses.map((r) => r.id),
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    );
  });

  it('closes a client whose held input grows past the bound (1008)', async () => {
    const sink = new FakeSink();
    const s = new NativeStream(new MemoryExecutor(), sink, { softBufferedBytes: 0, maxParkedBytes: 1000 });
    sink.buffered = 1;
    const chunk = frames(Array.from({ length: 50 }, (): Request => ({ op: 'ping' })));
    for (let i = 0; i < 3 && !sink.closedWith; i++) s.push(chunk);
    assert.equal(sink.closedWith?.code, WS_CLOSE.policyViolation);
    s.push(chunk); // ignored after close
    await settle();
    assert.equal(sink.responses.length, 0);
  });

  it('a frame sent as 1-byte messages costs about its size: the input bound counts queued chunks', async () => {
    // A header announcing 4 MiB, then one byte per message: each message queued on its own would
    // cost hundreds of bytes (1.5 GB for the frame), under a bound that counted payload bytes only.
    const sink = new FakeSink();
    const s = new NativeStream(new MemoryExecutor(), sink);
    const body = Buffer.alloc(4 << 20);
    const frame = encodeFrame(0x01, 5, body); // type 0x01 (ping) with a body: answered BAD_REQUEST
    s.push(Buffer.from(frame.subarray(0, 4)));
    const n = 300_000;
    for (let i = 0; i < n; i++) s.push(Buffer.from([frame[4 + i]!]));
    assert.equal(sink.closedWith, undefined);
    assert.ok(s.parkedCost() < 2 * (4 + n), `parked cost ${s.parkedCost()} for ${4 + n} bytes`);
    s.push(Buffer.from(frame.subarray(4 + n)));
    await settle();
    assert.deepEqual(sink.responses.map((r) => r.id), [5]);
    assert.equal(s.parkedCost(), 0);

    // Tiny messages between larger ones are not copied together, but each is charged: the client is
    // closed once what it costs passes the bound, long before its bytes alone would.
    const mixed = new FakeSink();
    const m = new NativeStream(new MemoryExecutor(), mixed, { maxParkedBytes: 1 << 20 });
    m.push(Buffer.from(frame.subarray(0, 4)));
    let sent = 4;
    while (!mixed.closedWith && sent < 1 << 20) {
      for (let i = 0; i < 60; i++) m.push(Buffer.from([0]));
      m.push(Buffer.alloc(1024));
      sent += 60 + 1024;
    }
    assert.equal(mixed.closedWith?.code, WS_CLOSE.policyViolation);
    assert.ok(sent < 1 << 18, `closed after ${sent} bytes`);
  });

  it('answers a malformed body with BAD_REQUEST and carries on; lost framing answers and closes (1002)', async () => {
    const sink = new FakeSink();
    const s = new NativeStream(new MemoryExecutor(), sink);
    s.push(Buffer.concat([encodeFrame(0x03, 9, Buffer.from([0x07])), encodeFrame(0x45, 10, Buffer.alloc(0)), encodeRequest(11, { op: 'ping' })]));
    await settle();
    assert.deepEqual(
      sink.responses.map((r) => [r.id, r.res.kind === 'error' ? r.res.error.code : r.res.kind]),
      [
        [9, 'BAD_REQUEST'],
        [10, 'BAD_REQUEST'],
        [11, 'ok'],
      ],
    );
    s.push(Buffer.from([0xff, 0xff, 0xff, 0xff, 0]));
    await settle();
    assert.equal(sink.closedWith?.code, WS_CLOSE.protocolError);
    assert.equal(sink.responses.at(-1)!.id, 0);
  });

  it('answers the requests before lost framing, then closes (1002) (found by fuzzing, 2026-12-07)', async () => {
    const exec = new MemoryExecutor();
    exec.delayMs = 20;
    const sink = new FakeSink();
    const s = new NativeStream(exec, sink);
    const put = { op: 'put' as const, key: enc.encode('w'), value: enc.encode('1'), clientId: 0n, seq: 0 };
    s.push(Buffer.concat([frames([put, { op: 'ping' }]), Buffer.from([0xff, 0xff, 0xff, 0xff, 0]), frames([{ op: 'ping' }], 7)]));
    await settle();
    assert.equal(sink.closedWith?.code, undefined, 'open while the requests before the bad prefix run');
    await new Promise((r) => setTimeout(r, 60));
    assert.deepEqual(
      sink.responses.map((r) => [r.id, r.res.kind === 'error' ? r.res.error.code : r.res.kind]),
      [
        [0, 'BAD_REQUEST'],
        [1, 'ok'],
        [2, 'ok'],
      ],
    );
    assert.equal(sink.closedWith?.code, WS_CLOSE.protocolError);
    assert.equal(exec.seen.length, 2, 'nothing after the bad prefix runs');
  });

  it('drops answers that complete after the transport closed', async () => {
    const exec = new MemoryExecutor();
    exec.delayMs = 1;
    const sink = new FakeSink();
    const s = new NativeStream(exec, sink);
    s.push(frames([{ op: 'ping' }]));
    s.close();
    await new Promise((r) => setTimeout(r, 5));
    assert.equal(sink.messages.length, 0);
  });

  // A partial frame was held for as long as the client answered uWS's pings (and a raw client's
  // data frame inside a fragmented message, merged by uWS into it, sat until the idle timeout).
  it('closes (1008) a connection whose frame stays incomplete for partialFrameTimeoutMs, however it trickles in', async (t) => {
    // The stream's clock is mocked (setTimeout and Date): on a loaded machine a real 60 ms pause can
    // outlast the 300 ms bound, and one byte every 50 ms can come slower than the test assumes.
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
    const sleep = async (ms: number): Promise<void> => {
      t.mock.timers.tick(ms);
      await settle();
    };
    const exec = new MemoryExecutor();
    const sink = new FakeSink();
    const s = new NativeStream(exec, sink, { partialFrameTimeoutMs: 300 });
    const ping = frames([{ op: 'ping' }]);
    // Whole frames, each split over messages, keep coming: every frame completes in time.
    for (let i = 0; i < 8; i++) {
      s.push(ping.subarray(0, 5));
      await sleep(60);
      s.push(ping.subarray(5));
    }
    await settle();
    assert.equal(sink.closedWith, undefined);
    assert.equal(sink.responses.length, 8);
    // One frame, a byte every 50 ms: the wait is counted from its first byte.
    const started = Date.now();
    for (let i = 0; i < ping.length - 1 && sink.closedWith === undefined; i++) {
      s.push(ping.subarray(i, i + 1));
      await sleep(50);
    }
    await sleep(400);
    const closed = sink.closedWith as FakeSink['closedWith']; // assert.equal above narrowed it to undefined
    assert.equal(closed?.code, WS_CLOSE.policyViolation);
    assert.match(closed.reason, /incomplete/);
    assert.ok(Date.now() - started < 1000);
    // Held input (back-pressure) is not read, so its partial frame is not timed.
    const held = new FakeSink();
    const h = new NativeStream(exec, held, { partialFrameTimeoutMs: 100, softBufferedBytes: 10 });
    held.buffered = 100;
    h.push(Buffer.concat([ping, ping.subarray(0, 4)]));
    await sleep(300);
    assert.equal(held.closedWith, undefined);
    held.buffered = 0;
    h.drained();
    await sleep(300);
    assert.equal((held.closedWith as FakeSink['closedWith'])?.code, WS_CLOSE.policyViolation, 'timed once read');
    h.close();
  });
});
