// What a client can make the HTTP and WebSocket doors hold, in-process on uWebSockets.js and on the
// node:http + ws fallback: a body sent in 1-byte chunks is held in one buffer, a native frame sent
// as 1-byte WebSocket messages is reassembled (the decoder copies tiny messages together:
// test/doors/native-stream.test.ts, test/wire/frame.test.ts), and a client that sends pings without
// reading the pongs is dropped past the back-pressure limit (the fallback; uWS keeps them bounded).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Door } from '../../src/doors/door-context.ts';
import { Reply, readBody, type HttpResponse } from '../../src/doors/http-util.ts';
import { decodeResponse, encodeRequest, FrameDecoder } from '../../src/wire/index.ts';
import { startHttpDoorWith } from './http-impl-door.ts';
import { MemoryExecutor, fakeContext } from './memory-executor.ts';
import { Opcode, WsClient } from './ws-client.ts';
import { waitFor } from '../support/wait.ts';

/** The part of uWS's HttpResponse that readBody and Reply use; the body is fed by hand. */
class FakeResponse {
  feed: ((chunk: ArrayBuffer, isLast: boolean) => void) | undefined;
  status = '';
  onAborted(): this {
    return this;
  }
  onData(fn: (chunk: ArrayBuffer, isLast: boolean) => void): this {
    this.feed = fn;
    return this;
  }
  cork(fn: () => void): this {
    fn();
    return this;
  }
  writeStatus(s: string): this {
    this.status = s;
    return this;
  }
  writeHeader(): this {
    return this;
  }
  end(): this {
    return this;
  }
}

/** One masked client frame (payload under 126 bytes). */
function maskedFrame(opcode: number, payload: Buffer): Buffer {
  const mask = randomBytes(4);
  return Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | payload.length]), mask, payload.map((b, i) => b ^ mask[i % 4]!)]);
}

describe('readBody', () => {
  it('holds a body sent in 1-byte chunks in one buffer, under twice its size', () => {
    const res = new FakeResponse();
    const limit = 1 << 20;
    let got: Buffer | null | undefined;
    const held = readBody(res as unknown as HttpResponse, new Reply(res as unknown as HttpResponse), limit, (b) => (got = b));
    const value = randomBytes(300_000);
    for (let i = 0; i < value.length; i++) {
      res.feed!(value.buffer.slice(value.byteOffset + i, value.byteOffset + i + 1) as ArrayBuffer, false);
      if (i % 997 === 0) assert.ok(held.capacity <= Math.max(2 * held.length, 4096), `${held.capacity} bytes held for ${held.length}`);
    }
    assert.equal(held.buffers, 1);
    assert.equal(held.length, value.length);
    assert.ok(held.capacity <= limit);
    res.feed!(new ArrayBuffer(0), true);
    assert.ok(got !== undefined && got !== null && got.equals(value));
  });

  it('never allocates past the limit, and refuses the byte over it (413)', () => {
    const res = new FakeResponse();
    const limit = 10_000;
    let got: Buffer | null | undefined;
    const held = readBody(res as unknown as HttpResponse, new Reply(res as unknown as HttpResponse), limit, (b) => (got = b));
    for (let i = 0; i < limit; i++) res.feed!(new ArrayBuffer(1), false);
    assert.equal(held.capacity, limit);
    assert.equal(got, undefined);
    res.feed!(new ArrayBuffer(1), false);
    assert.equal(got, null);
    assert.match(res.status, /^413/);
    assert.ok(held.capacity <= limit);
  });
});

for (const impl of ['uws', 'node'] as const)
describe(`HTTP and WebSocket doors (${impl}): memory a client can make them hold`, { timeout: 120_000 }, () => {
  let door: Door;
  let port: number;
  const exec = new MemoryExecutor();
  const ctx = fakeContext(exec);
  let wsClosed = 0;
  ctx.connectionClosed = (d) => {
    if (d === 'ws') wsClosed++;
  };
  const MAX_BACKPRESSURE = 256 * 1024;

  before(async () => {
    door = await startHttpDoorWith(impl, ctx, { listen: '127.0.0.1:0', ws: { maxBackpressureBytes: MAX_BACKPRESSURE } });
    port = Number(door.address.split(':')[1]);
  });
  after(async () => {
    await door.close();
  });

  it('stores a chunked PUT sent one byte per chunk', async () => {
    const value = randomBytes(5000);
    const chunks = [...value].map((b) => `1\r\n${String.fromCharCode(b)}\r\n`).join('');
    const answer = await new Promise<string>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.write('PUT /v1/kv/chunky HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n');
        s.write(Buffer.from(chunks, 'latin1'));
        s.write('0\r\n\r\n');
      });
      let text = '';
      s.on('data', (d) => (text += d.toString('latin1')));
      s.on('error', () => {});
      s.on('close', () => resolve(text));
    });
    assert.match(answer, /^HTTP\/1\.1 200 /);
    assert.ok(Buffer.from(exec.data.get('chunky') ?? []).equals(value));
  });

  it('answers a native frame sent as 1-byte WebSocket messages', async () => {
    const c = await WsClient.connect(port);
    const value = randomBytes(3000);
    const frame = encodeRequest(42, { op: 'put', key: Buffer.from('tiny-messages'), value, clientId: 0n, seq: 0 });
    const wire = Buffer.concat([...frame].map((b) => maskedFrame(Opcode.binary, Buffer.from([b]))));
    c.socket.write(wire);
    const m = await c.next();
    const d = new FrameDecoder();
    d.push(m.data);
    const f = d.read();
    assert.equal(f?.requestId, 42);
    assert.equal(decodeResponse(f.type, f.body).kind, 'ok');
    assert.ok(Buffer.from(exec.data.get('tiny-messages') ?? []).equals(value));
    c.close();
    await c.closed;
  });

  // The node fallback only: uWS answers pings itself and keeps the pongs bounded without closing
  // (2.8 GB of pings against a 256 KiB limit: the connection stays, memory flat).
  if (impl === 'node')
  it('drops a client that sends pings and never reads the pongs, past the back-pressure limit', async () => {
    const closedBefore = wsClosed;
    const c = await WsClient.connect(port);
    c.socket.pause(); // never reads: the pongs pile up in the server
    const batch = Buffer.concat(Array.from({ length: 1000 }, () => maskedFrame(Opcode.ping, Buffer.alloc(125, 1))));
    // Kernel buffers on both sides take a few MiB before the server holds any: 256 times the
    // limit of pongs is far past what a bounded server lets pile up.
    const cap = 256 * MAX_BACKPRESSURE;
    let sent = 0;
    while (wsClosed === closedBefore && !c.socket.destroyed && sent < cap) {
      if (!c.socket.write(batch)) await new Promise((r) => c.socket.once('drain', r).once('close', r));
      else await new Promise((r) => setImmediate(r));
      sent += batch.length;
    }
    c.destroy();
    await c.closed;
    assert.ok(sent < cap, `${sent} bytes of pings sent and the connection is still open`);
    // Waited for, not given a second: a loaded machine may take longer to see the close.
    await waitFor('the door to count the connection closed', () => wsClosed !== closedBefore);
    assert.equal(wsClosed, closedBefore + 1);
  });
});
