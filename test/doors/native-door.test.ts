// The native door over a FrameSocket with a fake socket whose peer reads only when told: the bound
// on requests in flight holds even within one chunk, input held for unsent bytes stays held while
// requests complete (the two reasons never release each other), and a client that half-closed
// gets every answer before the door closes.
import assert from 'node:assert/strict';
import type net from 'node:net';
import { Duplex } from 'node:stream';
import { describe, it } from 'node:test';
import { serveNativeClient } from '../../src/doors/native-door.ts';
import { FrameSocket } from '../../src/transport/frame-socket.ts';
import { FrameDecoder, decodeResponse, encodeRequest, encodeResponse, type Request, type Response } from '../../src/wire/index.ts';
import type { Executor } from '../../src/doors/door-context.ts';
import { waitFor } from '../support/wait.ts';
import { MemoryExecutor } from './memory-executor.ts';

/** A socket's stream side. Until `startReading`, what the server writes is never taken (unsent bytes pile up). */
class FakeSocket extends Duplex {
  private reading = false;
  private readonly waiting: (() => void)[] = [];
  private readonly decoder = new FrameDecoder();
  readonly answers: { id: number; res: Response }[] = [];

  setNoDelay(): this {
    return this;
  }

  setTimeout(): this {
    return this;
  }

  override _read(): void {}

  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    const take = (): void => {
      this.decoder.push(Buffer.from(chunk));
      for (let f = this.decoder.read(); f !== null; f = this.decoder.read()) this.answers.push({ id: f.requestId, res: decodeResponse(f.type, f.body) });
      done();
    };
    if (this.reading) take();
    else this.waiting.push(take);
  }

  startReading(): void {
    this.reading = true;
    for (const take of this.waiting.splice(0)) take();
  }
}

/** Answers only when told: what runs at once is visible. */
class HeldExecutor implements Executor {
  started = 0;
  running = 0;
  maxRunning = 0;
  private readonly pending: (() => void)[] = [];

  execute(): Promise<Response> {
    this.started++;
    this.maxRunning = Math.max(this.maxRunning, ++this.running);
    return new Promise((resolve) =>
      this.pending.push(() => {
        this.running--;
        resolve({ kind: 'ok' });
      }),
    );
  }

  answerAll(): number {
    const n = this.pending.length;
    for (const answer of this.pending.splice(0)) answer();
    return n;
  }
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await tick();
}

const enc = new TextEncoder();
const gets = (n: number): Request[] => Array.from({ length: n }, (): Request => ({ op: 'get', key: enc.encode('big'), consistency: 'stale' }));
const frames = (reqs: Request[], firstId = 0): Buffer => Buffer.concat(reqs.map((r, i) => encodeRequest(firstId + i, r)));

function door(executor: Executor, opts: { maxInFlight: number; maxPendingWriteBytes?: number; maxUnsentBytes?: number }): { socket: FakeSocket; conn: FrameSocket } {
  const socket = new FakeSocket();
  const conn = new FrameSocket(socket as unknown as net.Socket, { maxPendingWriteBytes: opts.maxPendingWriteBytes, maxUnsentBytes: opts.maxUnsentBytes });
  serveNativeClient(conn, executor, { maxInFlight: opts.maxInFlight });
  conn.listen();
  return { socket, conn };
}

describe('native door half-close', () => {
  it('answers every request of a client that half-closed, even input held back, then closes', async () => {
    const exec = new HeldExecutor();
    const { socket } = door(exec, { maxInFlight: 4 });
    socket.startReading();
    socket.push(frames(gets(10)));
    socket.push(null); // shutdown(SHUT_WR): the client reads on
    await settle();
    assert.equal(exec.started, 4);
    assert.equal(socket.writableEnded, false, 'not closed while requests run or wait');
    while (exec.answerAll() > 0) {
      await settle();
      if (exec.started < 10) assert.equal(socket.writableEnded, false);
    }
    assert.deepEqual(
      socket.answers.map((a) => a.id).sort((a, b) => a - b),
      Array.from({ length: 10 }, (_, i) => i),
    );
    assert.equal(socket.writableEnded, true, 'closed once everything is answered');
  });
});

describe('native door: hand-off and membership frames (found in review, 2026-12-07)', () => {
  it('count in the in-flight bound, and one whose answer fails is answered UNAVAILABLE', async () => {
    const socket = new FakeSocket();
    const conn = new FrameSocket(socket as unknown as net.Socket);
    const waiting: { id: number; settle: (ok: boolean) => void }[] = [];
    serveNativeClient(conn, new MemoryExecutor(), {
      maxInFlight: 4,
      // Every frame is "special" here: an answer the test settles (a membership add waits up to 60 s).
      special: (f) =>
        new Promise<Uint8Array>((resolve, reject) =>
          waiting.push({ id: f.requestId, settle: (ok) => (ok ? resolve(encodeResponse(f.requestId, { kind: 'ok' })) : reject(new Error('executor broke'))) }),
        ),
    });
    conn.listen();
    socket.startReading();
    socket.push(frames(gets(10)));
    await settle();
    assert.equal(waiting.length, 4, 'no more than maxInFlight taken in');
    waiting.shift()!.settle(false); // a rejection: answered, not an unhandled rejection ending the process
    await settle();
    const failed = socket.answers.find((a) => a.id === 0);
    assert.ok(failed && failed.res.kind === 'error' && failed.res.error.code === 'UNAVAILABLE' && /executor broke/.test(failed.res.error.message));
    for (let n = 0; n < 10 && waiting.length > 0; n++) {
      for (const w of waiting.splice(0)) w.settle(true);
      await settle();
    }
    assert.equal(socket.answers.length, 10, 'every frame answered once the bound allowed');
  });
});

describe('native door back-pressure', () => {
  it('runs no more than maxInFlight requests, even when one chunk carries many more', async () => {
    const exec = new HeldExecutor();
    const { socket } = door(exec, { maxInFlight: 8 });
    socket.startReading();
    socket.push(frames([...gets(100)])); // one chunk, as a 64 KiB read holds ~3,000 small requests
    await settle();
    assert.equal(exec.started, 8, 'the frames of the chunk past the bound wait');
    while (exec.answerAll() > 0) await settle();
    assert.equal(exec.maxRunning, 8);
    assert.deepEqual(
      socket.answers.map((a) => a.id).sort((a, b) => a - b),
      Array.from({ length: 100 }, (_, i) => i),
      'every held frame is dispatched once the bound allows',
    );
  });

  it('keeps input held for unsent bytes while requests complete, so a client that does not read holds bounded memory', async () => {
    const value = 64 << 10;
    const maxPendingWriteBytes = 128 << 10;
    const maxInFlight = 8;
    const exec = new MemoryExecutor();
    exec.data.set('big', Buffer.alloc(value, 7));
    const { socket } = door(exec, { maxInFlight, maxPendingWriteBytes });
    const n = 400;
    // One frame per chunk, so only a resumed socket lets more in. Three answers pass the unsent
    // bound while 8 run; the fifth takes the in-flight count below half, which must not resume.
    for (let i = 0; i < n; i++) socket.push(frames(gets(1), i));
    for (let i = 0; i < 20; i++) await settle(); // every request that can complete does
    assert.ok(exec.seen.length < n, `${exec.seen.length} of ${n} requests ran for a client that reads nothing`);
    const bound = maxPendingWriteBytes + maxInFlight * (value + 64);
    assert.ok(socket.writableLength <= bound, `${socket.writableLength} bytes unsent, bound ${bound}`);
    socket.startReading();
    await waitFor('every answer', () => socket.answers.length >= n);
    assert.deepEqual(
      socket.answers.map((a) => a.id).sort((a, b) => a - b),
      Array.from({ length: n }, (_, i) => i),
      'once the client reads, the held requests run and every one is answered',
    );
    assert.ok(socket.answers.every((a) => a.res.kind === 'value' && a.res.value?.length === value));
  });

  it('drops a client that reads nothing once its unsent answers pass the hard bound', async () => {
    const value = 64 << 10;
    const exec = new MemoryExecutor();
    exec.data.set('big', Buffer.alloc(value, 7));
    // 64 requests may run, each answering 64 KiB: 4 MiB, past a hard bound of 1 MiB.
    const { socket } = door(exec, { maxInFlight: 64, maxPendingWriteBytes: 512 << 10, maxUnsentBytes: 1 << 20 });
    socket.push(frames(gets(64)));
    await waitFor('the connection dropped', () => socket.destroyed);
    assert.ok(socket.writableLength <= (1 << 20) + value + 64, `${socket.writableLength} bytes held after the drop`);
  });
});

describe('native door: a batch over the op limit (found by fuzzing, 2026-12-07)', () => {
  it('is answered TOO_LARGE from its count, without decoding its ops or reaching the executor', async () => {
    // 4 MiB of empty ops is 1.4M of them: decoding each before the refusal held a replica's event
    // loop for 3-4 s per frame, long enough for elections.
    const exec = new HeldExecutor();
    const { socket } = door(exec, { maxInFlight: 8 });
    socket.startReading();
    const n = 1_400_000;
    const body = Buffer.alloc(16 + 4 + 3 * n);
    body.writeUInt32BE(n, 16);
    for (let i = 0; i < n; i++) body[20 + 3 * i] = 2; // delete, empty key
    const frame = Buffer.alloc(9 + body.length);
    frame.writeUInt32BE(5 + body.length, 0);
    frame[4] = 0x08; // BATCH
    frame.writeUInt32BE(41, 5);
    body.copy(frame, 9);
    socket.push(frame);
    await waitFor('the answer', () => socket.answers.length === 1);
    const a = socket.answers[0]!;
    assert.equal(a.id, 41);
    assert.ok(a.res.kind === 'error' && a.res.error.code === 'TOO_LARGE', JSON.stringify(a.res));
    assert.match(a.res.error.message, /batch of 1400000 operations exceeds the limit of 10000/);
    assert.equal(exec.started, 0, 'never reaches the executor');
  });
});

describe('native door: lost framing (found by fuzzing, 2026-12-07)', () => {
  it('answers the requests before the bad length prefix, then closes', async () => {
    const exec = new HeldExecutor();
    const { socket } = door(exec, { maxInFlight: 8 });
    socket.startReading();
    const junk = Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 0]); // a frame length over the limit
    socket.push(Buffer.concat([frames(gets(3), 1), junk, frames(gets(2), 10)]));
    await settle();
    assert.equal(exec.started, 3, 'the frames before the bad prefix run; none after it');
    const lost = socket.answers.find((a) => a.id === 0);
    assert.ok(lost && lost.res.kind === 'error' && lost.res.error.code === 'BAD_REQUEST' && /exceeds the limit/.test(lost.res.error.message));
    assert.equal(socket.writableEnded, false, 'not closed while requests before it run');
    socket.push(null); // the client half-closes: its end dispatches again, and meets the bad prefix again
    await settle();
    exec.answerAll();
    await settle();
    assert.equal(socket.answers.filter((a) => a.id === 0).length, 1, 'one error frame, though dispatch resumes and meets the bad prefix again');
    assert.deepEqual(
      socket.answers.filter((a) => a.id !== 0).map((a) => [a.id, a.res.kind]),
      [
        [1, 'ok'],
        [2, 'ok'],
        [3, 'ok'],
      ],
    );
    assert.equal(socket.writableEnded, true, 'closed once they are answered');
  });
});
