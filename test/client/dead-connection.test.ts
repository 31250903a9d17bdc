// After a network partition heals, an old TCP connection can stay dead: TCP retransmits on a
// backoff of many seconds, and a stateful firewall that lost the flow (kube-proxy's conntrack rule
// drops INVALID packets) can drop its packets for good. The cure is the same on both kinds of
// connection: one that hears nothing for a bound is replaced. A client connection: a request that
// timed out with nothing at all heard since it was sent drops the socket, so the next request
// connects anew. A replica link: the accepting side sends a keepalive; the dialing side replaces a
// link that heard nothing for idleMs (also a connect that never completes its handshake).
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, describe, it, mock } from 'node:test';
import { Connection } from '../../src/cluster/connection.ts';
import { servePeerLink } from '../../src/transport/inbound.ts';
import { FrameSocket } from '../../src/transport/frame-socket.ts';
import { PeerLink } from '../../src/transport/peer-link.ts';
import { FrameDecoder, FrameType, PROTOCOL_VERSION, decodeRequest, encodeHello, encodeResponse } from '../../src/wire/index.ts';
import { waitFor } from '../support/wait.ts';

const servers: Server[] = [];
const sockets = new Set<Socket>();
after(() => {
  for (const s of sockets) s.destroy();
  for (const s of servers) s.close();
});

function listen(onSocket: (sock: Socket, index: number) => void): Promise<string> {
  let n = 0;
  const server = createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    onSocket(sock, n++);
  });
  servers.push(server);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`127.0.0.1:${(server.address() as AddressInfo).port}`)));
}

describe('a client connection whose path died', () => {
  // Regression (CI, 2026-12-05): the answer to the first request and the second request fell in one
  // millisecond, so "heard nothing since it left" compared equal times and the dead connection was
  // kept. With the wall clock frozen every event shares one millisecond.
  it('is replaced even when the answer before it and the request share a millisecond', async () => {
    mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    try {
      await deadPathThenNewConnection();
    } finally {
      mock.timers.reset();
    }
  });

  it('is replaced after a request that heard nothing back: the next request goes through a new connection', () => deadPathThenNewConnection());
});

/** The first connection answers one request, then its path goes dead; the request after the silent one must connect anew. */
async function deadPathThenNewConnection(): Promise<void> {
  // The first connection answers one request, then its path goes dead (everything it is sent is lost).
  const address = await listen((sock, index) => {
    const decoder = new FrameDecoder();
    let answered = 0;
    sock.on('data', (b) => {
      decoder.push(b);
      for (let f = decoder.read(); f !== null; f = decoder.read()) {
        decodeRequest(f.type, f.body);
        if (index === 0 && answered >= 1) continue;
        answered++;
        sock.write(encodeResponse(f.requestId, { kind: 'ok' }));
      }
    });
  });
  const c = new Connection(address);
  try {
    assert.deepEqual(await c.request({ op: 'ping' }, 5000), { kind: 'ok' });
    await assert.rejects(c.request({ op: 'ping' }, 200), /no answer/);
    assert.deepEqual(await c.request({ op: 'ping' }, 5000), { kind: 'ok' }, 'the request after the silent one connects anew');
  } finally {
    c.close();
  }
}

describe('a replica link', () => {
  const self = { version: PROTOCOL_VERSION, replicaId: 1, groupId: 1 };
  const peer = { version: PROTOCOL_VERSION, replicaId: 2, groupId: 1 };

  it('that hears nothing after the handshake is replaced', async () => {
    // A peer that completes the handshake, then falls silent (no keepalive): what a dead path looks like.
    const address = await listen((sock) => {
      const decoder = new FrameDecoder();
      sock.on('data', (b) => {
        decoder.push(b);
        for (let f = decoder.read(); f !== null; f = decoder.read()) if (f.type === FrameType.Hello) sock.write(encodeHello(peer));
      });
    });
    const link = new PeerLink({ self, peerId: 2, address, idleMs: 300 });
    try {
      await waitFor('the silent link to be replaced and connected again', () => link.stats.silentReplaced >= 1 && link.stats.connects >= 2);
    } finally {
      link.close();
    }
  });

  it('whose handshake never completes is abandoned and dialed again', async () => {
    let accepted = 0;
    const address = await listen(() => accepted++); // accepts, never answers the HELLO
    const link = new PeerLink({ self, peerId: 2, address, idleMs: 300 });
    try {
      await waitFor('a second connection attempt', () => accepted >= 2 && link.stats.silentReplaced >= 1);
      assert.equal(link.connected, false);
    } finally {
      link.close();
    }
  });

  it("is kept while the accepting side's keepalives arrive", async () => {
    const address = await listen((sock) => {
      const conn = new FrameSocket(sock);
      conn.onFrame = (f) => {
        if (f.type !== FrameType.Hello) return;
        servePeerLink(conn, peer, { self: peer, accept: () => undefined, onRaft: () => {}, execute: () => Promise.resolve({ kind: 'ok' }), keepaliveMs: 20 });
      };
      conn.listen();
    });
    const link = new PeerLink({ self, peerId: 2, address, idleMs: 2000 });
    try {
      await waitFor('the handshake', () => link.connected);
      await new Promise((r) => setTimeout(r, 3000)); // longer than idleMs, with keepalives every 20 ms
      assert.equal(link.stats.silentReplaced, 0);
      assert.equal(link.stats.connects, 1);
    } finally {
      link.close();
    }
  });
});
