// Carrier.close rejected every forward in flight as possibly sent (LinkError sent=true: the router
// answers TIMEOUT, "may still apply"), including forwards still waiting in the carrier's queue
// behind a full socket buffer, which were never written: those are sent=false, so the router
// relays them again. Forwards already written stay sent=true.
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { Carrier, LinkError, SOCKET_LOW_WATER } from '../../src/transport/carrier.ts';
import { FrameDecoder, FrameType, PROTOCOL_VERSION, encodeHello } from '../../src/wire/index.ts';
import { waitFor } from '../support/wait.ts';

describe('Carrier.close', () => {
  it('rejects forwards still queued with sent=false, forwards written with sent=true', async () => {
    const sockets = new Set<Socket>();
    // A peer that answers the HELLO, then stops reading: the carrier's socket buffer fills up.
    const server = createServer((sock) => {
      sockets.add(sock);
      const decoder = new FrameDecoder();
      sock.on('data', (b) => {
        decoder.push(b);
        for (let f = decoder.read(); f !== null; f = decoder.read()) {
          if (f.type !== FrameType.Hello) continue;
          sock.write(encodeHello({ version: PROTOCOL_VERSION, replicaId: 2, groupId: 0 }));
          sock.pause();
          return;
        }
      });
      sock.on('error', () => {});
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    let handshaken = false;
    const carrier = new Carrier({
      address,
      self: { version: PROTOCOL_VERSION, replicaId: 1, groupId: 0 },
      peerId: 2,
      maxQueueBytes: 256 << 20,
      idleMs: 60_000,
      onHandshake: () => (handshaken = true),
      onClosed: () => {},
    });
    const pair = carrier.opening;
    try {
      await waitFor('the handshake', () => handshaken);
      // Written straight to the socket (nothing waits yet): it may reach the peer.
      const written = carrier.forward(pair, 0x01, new Uint8Array(8), 1, 30_000);
      // Fill the socket's buffer past the low water mark (the peer reads nothing).
      const socket = (carrier as unknown as { socket: Socket }).socket;
      for (let i = 0; i < 256 && socket.writableLength < SOCKET_LOW_WATER; i++) {
        carrier.send(pair, [Buffer.alloc(1 << 20)]);
        await new Promise((r) => setImmediate(r)); // let the kernel take what it will
      }
      assert.ok(socket.writableLength >= SOCKET_LOW_WATER, `socket buffer full (${socket.writableLength} bytes)`);
      const queued = carrier.forward(pair, 0x01, new Uint8Array(8), 1, 30_000);
      carrier.close('closed');
      await assert.rejects(queued, (e: unknown) => e instanceof LinkError && e.sent === false, 'a queued forward never left');
      await assert.rejects(written, (e: unknown) => e instanceof LinkError && e.sent === true, 'a written forward may have arrived');
    } finally {
      carrier.close('closed');
      for (const s of sockets) s.destroy();
      server.close();
    }
  });
});
