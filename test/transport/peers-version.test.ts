// A rolling upgrade mixes protocol versions on replica links: a quiet heartbeat's flags byte
// (protocol 2) must never reach a protocol 1 peer, nor a blank follower's answer flag (protocol 4)
// a peer below 4, whose strict decoder would drop the link.
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { MsgType, type Message } from '../../src/raft/types.ts';
import { FrameSocket } from '../../src/transport/frame-socket.ts';
import { servePeerLink } from '../../src/transport/inbound.ts';
import { Peers } from '../../src/transport/peers.ts';
import { PROTOCOL_VERSION } from '../../src/wire/index.ts';
import { waitFor } from '../support/wait.ts';

/** A peer replica 2 that answers HELLO with `version` and records the Raft messages it decodes. */
async function peerSpeaking(version: number): Promise<{ address: string; got: Message[]; close: () => void }> {
  const got: Message[] = [];
  const self = { version, replicaId: 2, groupId: 1 };
  const server = createServer((sock) => {
    // As the real server does: a peer closing mid-write resets the socket; unheard, that error
    // would be an uncaught exception after the test ends.
    sock.on('error', () => {});
    const conn = new FrameSocket(sock);
    conn.onFrame = () =>
      servePeerLink(conn, { version: PROTOCOL_VERSION, replicaId: 1, groupId: 1 }, {
        self,
        accept: () => undefined,
        onRaft: (msgs) => got.push(...msgs),
        execute: () => Promise.resolve({ kind: 'ok' }),
      });
    conn.listen();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { address: `127.0.0.1:${port}`, got, close: () => server.close() };
}

describe('replica links across protocol versions', () => {
  for (const version of [3, 4]) {
    it(`a protocol ${version} peer gets a blank follower's answers ${version >= 4 ? 'with' : 'without'} the flag, and stays connected`, async () => {
      const peer = await peerSpeaking(version);
      const peers = new Peers({ version: PROTOCOL_VERSION, replicaId: 1, groupId: 1 }, [{ id: 2, address: peer.address }]);
      try {
        await waitFor('the handshake', () => peers.stats()[0]?.connected === true);
        const hbr: Message = { type: MsgType.HeartbeatResp, from: 1, to: 2, term: 3, round: 9, blank: true };
        const ar: Message = { type: MsgType.AppendResp, from: 1, to: 2, term: 3, index: 7, reject: false, hintIndex: 0, hintTerm: 0, blank: true };
        peers.send([hbr, ar]);
        await waitFor('both answers', () => peer.got.length === 2);
        const strip = (m: Message): Message => {
          const { blank: _, ...plain } = m as Message & { blank?: true };
          return plain as Message;
        };
        assert.deepEqual(peer.got, version >= 4 ? [hbr, ar] : [strip(hbr), strip(ar)]);
        assert.equal(peers.stats()[0]?.connected, true);
      } finally {
        peers.close();
        peer.close();
      }
    });
  }

  for (const version of [1, 2]) {
    it(`a protocol ${version} peer gets quiet heartbeats ${version >= 2 ? 'with' : 'without'} the flag, and stays connected`, async () => {
      const peer = await peerSpeaking(version);
      const peers = new Peers({ version: PROTOCOL_VERSION, replicaId: 1, groupId: 1 }, [{ id: 2, address: peer.address }]);
      try {
        await waitFor('the handshake', () => peers.stats()[0]?.connected === true);
        const hb: Message = { type: MsgType.Heartbeat, from: 1, to: 2, term: 3, commit: 7, round: 9, quiet: true };
        peers.send([hb, { ...hb, round: 10 }]);
        await waitFor('both heartbeats', () => peer.got.length === 2);
        const { quiet: _, ...plain } = hb;
        const want = version >= 2 ? hb : plain;
        assert.deepEqual(peer.got, [want, { ...want, round: 10 }]);
        assert.equal(peers.stats()[0]?.connected, true);
      } finally {
        peers.close();
        peer.close();
      }
    });
  }
});
