// The slow-loris guard of FrameSocket (native door, replica links): a frame must be complete
// within partialFrameTimeoutMs of its first byte. It used the socket's idle timer, which a byte now
// and then keeps from firing, and which fires once per idle spell: a client sending one byte and
// then nothing, or a byte every 500 ms, held its connection for good (found in review, 2026-12-07).
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { FrameSocket } from '../../src/transport/frame-socket.ts';
import { encodeRequest, type Frame } from '../../src/wire/index.ts';
import { waitFor } from '../support/wait.ts';

const servers: net.Server[] = [];
after(() => {
  for (const s of servers) s.close();
});

/** A server whose connections are FrameSockets with a partial-frame bound of `partialMs`. */
async function frameServer(partialMs = 300): Promise<{ port: number; closed: () => number; frames: Frame[] }> {
  let closed = 0;
  const frames: Frame[] = [];
  const server = net.createServer((sock) => {
    sock.on('error', () => {});
    sock.on('close', () => closed++);
    const conn = new FrameSocket(sock, { partialFrameTimeoutMs: partialMs });
    conn.onFrame = (f) => frames.push(f);
    conn.listen();
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, closed: () => closed, frames };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('a frame that never completes', () => {
  it('drops a client that sends one byte and then nothing', async () => {
    // A bound of 3 s: the idle timer fired once, at 1 s, found the frame young, and never again.
    const s = await frameServer(3000);
    const c = net.connect(s.port, '127.0.0.1');
    c.on('error', () => {});
    c.write(encodeRequest(1, { op: 'ping' }).subarray(0, 1));
    await waitFor('the connection dropped', () => s.closed() === 1, 10_000);
    c.destroy();
  });

  it('drops a client that trickles a byte at a time', async () => {
    const s = await frameServer();
    const c = net.connect(s.port, '127.0.0.1');
    c.on('error', () => {});
    const frame = encodeRequest(1, { op: 'put', key: Buffer.from('k'), value: Buffer.alloc(4000), clientId: 0n, seq: 0 });
    let i = 0;
    const trickle = setInterval(() => c.write(frame.subarray(i, ++i)), 50);
    try {
      await waitFor('the connection dropped', () => s.closed() === 1);
    } finally {
      clearInterval(trickle);
      c.destroy();
    }
  });

  it('keeps a client whose frames keep completing, each chunk ending inside the next frame', async () => {
    // A bound of 1.5 s, not 300 ms: a frame's chunks are 40 ms apart, and a loaded machine can
    // stall this process (client and server) for longer than 300 ms between two of them.
    const s = await frameServer(1500);
    const c = net.connect(s.port, '127.0.0.1');
    c.on('error', () => {});
    const stream = Buffer.concat(Array.from({ length: 60 }, (_, n) => encodeRequest(n + 1, { op: 'ping' })));
    const step = Math.ceil(stream.length / 60) + 3; // never on a frame boundary for long
    for (let at = 0; at < stream.length; at += step) {
      c.write(stream.subarray(at, at + step));
      await sleep(40); // 60 chunks: about 2.4 s, longer than the bound
    }
    await waitFor('every frame delivered', () => s.frames.length === 60);
    assert.equal(s.closed(), 0);
    c.destroy();
  });
});
