// A replica that restarts dials its peers at once, but a peer's link back to it may be waiting out a
// reconnect backoff grown while it was down (up to 2 s): in a rolling upgrade, leadership handed to
// a replica restarted less than 2 s earlier got no answer from the third replica until that
// backoff ran out (about 2 s without a leader). Links are one connection per direction, so the
// restarted replica reaching us says nothing to our link to it unless the hub tells it (peerUp).
// Real sockets on 127.0.0.1; every assertion is on the link's state, not on how long it took.
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { MsgType, type Message } from '../../src/raft/types.ts';
import { FrameSocket } from '../../src/transport/frame-socket.ts';
import { servePeerLink } from '../../src/transport/inbound.ts';
import { LinkHub } from '../../src/transport/link-hub.ts';
import { PeerLink } from '../../src/transport/peer-link.ts';
import { Peers } from '../../src/transport/peers.ts';
import { PROTOCOL_VERSION, decodeHello, encodeRaftMessages } from '../../src/wire/index.ts';
import { waitFor } from '../support/wait.ts';

/** The longest backoff a link waits (MAX_BACKOFF_MS in peer-link.ts). */
const MAX_BACKOFF_MS = 2000;

interface Listening {
  address: string;
  port: number;
  server: Server;
  /** Connections accepted and still open. */
  open: Set<Socket>;
  /** Connections accepted since it listens. */
  accepted: number;
  /** Raft messages its replica received. */
  got: Message[];
  /** Stops listening and drops every accepted connection (the process died). */
  stop(): Promise<void>;
}

const cleanups: (() => void)[] = [];
after(() => {
  for (const c of cleanups.reverse()) c();
});

/** Replica `id` of `group` hosted in `hub`'s process, listening on `port` (0: any) and serving replica links. */
async function listen(hub: LinkHub, group: number, id: number, port = 0): Promise<Listening> {
  const self = { version: PROTOCOL_VERSION, replicaId: id, groupId: group };
  const got: Message[] = [];
  const hosted = { onRaft: (msgs: Message[]) => got.push(...msgs), execute: () => Promise.resolve({ kind: 'ok' as const }) };
  const open = new Set<Socket>();
  const l: Partial<Listening> = { open, accepted: 0, got };
  const server = createServer((sock) => {
    open.add(sock);
    l.accepted!++;
    sock.on('close', () => open.delete(sock));
    sock.on('error', () => {});
    const conn = new FrameSocket(sock);
    conn.onFrame = (first) => servePeerLink(conn, decodeHello(first.body), { self, accept: () => undefined, ...hosted, hub, keepaliveMs: 50 });
    conn.listen();
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  const unhost = hub.host(group, id, hosted);
  const bound = (server.address() as AddressInfo).port;
  const stop = async (): Promise<void> => {
    unhost();
    for (const s of open) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  };
  cleanups.push(() => void stop().catch(() => {}));
  return Object.assign(l, { address: `127.0.0.1:${bound}`, port: bound, server, stop }) as Listening;
}

function link(hub: LinkHub, group: number, from: number, to: number, address: string): PeerLink {
  // random() = 1: every backoff waits its whole length, so the test knows what it waits out.
  const l = new PeerLink({ self: { version: PROTOCOL_VERSION, replicaId: from, groupId: group }, peerId: to, address, hub, random: () => 1 });
  cleanups.push(() => l.close());
  return l;
}

function heartbeat(from: number, to: number, round: number): Message {
  return { type: MsgType.Heartbeat, from, to, term: 1, commit: 0, round };
}

/** Waits until `l`, its peer gone, waits out the longest backoff there is. */
async function backedOffFully(l: PeerLink): Promise<void> {
  await waitFor('the link to back off to its longest wait', () => !l.connected && l.backingOff && l.backoffMs === MAX_BACKOFF_MS);
}

describe('a link waiting out a reconnect backoff dials at once when its peer is heard from', () => {
  it('the peer restarted and dialed us: our link to it reconnects before its backoff runs out', async () => {
    const hubA = new LinkHub();
    const a = await listen(hubA, 1, 1);
    let b = await listen(new LinkHub(), 1, 2);
    const ab = link(hubA, 1, 1, 2, b.address);
    await waitFor('1→2 connected', () => ab.connected);
    // Replica 2's process dies; 1's link to it fails every dial until its backoff is 2 s long.
    await b.stop();
    await backedOffFully(ab);
    const early = ab.stats.earlyDials;
    // Replica 2 starts again at its address and dials replica 1, as a restarted server does.
    const hubB = new LinkHub();
    b = await listen(hubB, 1, 2, b.port);
    const ba = link(hubB, 1, 2, 1, a.address);
    await waitFor('2→1 connected', () => ba.connected);
    await waitFor('1→2 connected again', () => ab.connected);
    assert.equal(ab.stats.earlyDials - early, 1, 'reconnected by the peer reaching us, not by the backoff timer');
    assert.equal(b.accepted, 1, 'one dial to the restarted replica');
    // And it carries: replica 2 hears replica 1 again.
    assert.ok(ab.send(encodeRaftMessages([heartbeat(1, 2, 7)])));
    await waitFor('the heartbeat delivered', () => b.got.some((m) => m.type === MsgType.Heartbeat && m.round === 7));
  });

  it('a frame from the peer on a connection that survived: our link reconnects at once', async () => {
    // The peer reached us before our link noticed its connection had died (a handshake then wakes
    // nothing); any frame of the peer's wakes it later.
    const hubA = new LinkHub();
    const a = await listen(hubA, 1, 1);
    const hubB = new LinkHub();
    let b = await listen(hubB, 1, 2);
    const ab = link(hubA, 1, 1, 2, b.address);
    const ba = link(hubB, 1, 2, 1, a.address);
    await waitFor('both directions connected', () => ab.connected && ba.connected);
    // Replica 2 stops listening (its accepted connections drop) while its own link to 1 lives on.
    await b.stop();
    await backedOffFully(ab);
    assert.ok(ba.connected, 'the other direction is still up');
    const early = ab.stats.earlyDials;
    b = await listen(hubB, 1, 2, b.port);
    assert.ok(ba.send(encodeRaftMessages([heartbeat(2, 1, 1)])));
    await waitFor('1→2 connected again', () => ab.connected);
    assert.equal(ab.stats.earlyDials - early, 1, 'reconnected by the frame from the peer, not by the backoff timer');
    assert.equal(b.accepted, 1);
  });

  it('a peer that reaches us but cannot be reached costs one early dial per backoff, not one per frame', async () => {
    const hubA = new LinkHub();
    const a = await listen(hubA, 1, 1);
    const hubB = new LinkHub();
    const b = await listen(hubB, 1, 2);
    const ab = link(hubA, 1, 1, 2, b.address);
    const ba = link(hubB, 1, 2, 1, a.address);
    await waitFor('both directions connected', () => ab.connected && ba.connected);
    await b.stop(); // and stays down: every dial to it is refused
    await backedOffFully(ab);
    const early = ab.stats.earlyDials;
    for (let round = 1; round <= 20; round++) {
      assert.ok(ba.send(encodeRaftMessages([heartbeat(2, 1, round)])));
      await new Promise((r) => setTimeout(r, 5));
    }
    await waitFor('every frame arrived', () => a.got.filter((m) => m.type === MsgType.Heartbeat).length === 20);
    await waitFor('the early dial refused, back to waiting', () => ab.backingOff);
    assert.equal(ab.stats.earlyDials - early, 1);
    assert.ok(!ab.connected);
  });

  it('a frame of a pair riding a shared connection wakes that pair\'s link', async () => {
    // Process P hosts replica 1 (group 1) and 4 (group 2); process Q hosts 2 and 5. Q's links to P
    // share one connection: 2→1 opens it, 5→4 rides it in CHANNEL frames.
    const hubP = new LinkHub();
    const p1 = await listen(hubP, 1, 1);
    const p4 = await listen(hubP, 2, 4);
    const hubQ = new LinkHub();
    await listen(hubQ, 1, 2);
    let q5 = await listen(hubQ, 2, 5);
    const l45 = link(hubP, 2, 4, 5, q5.address);
    const l21 = link(hubQ, 1, 2, 1, p1.address);
    const l54 = link(hubQ, 2, 5, 4, p4.address);
    await waitFor('links connected, Q\'s two sharing one connection', () => l45.connected && l21.connected && l54.connected && hubQ.stats.handedOver === 1);
    await q5.stop();
    await backedOffFully(l45);
    const early = l45.stats.earlyDials;
    q5 = await listen(hubQ, 2, 5, q5.port);
    assert.ok(l54.send(encodeRaftMessages([heartbeat(5, 4, 1)])));
    await waitFor('4→5 connected again', () => l45.connected);
    assert.equal(l45.stats.earlyDials - early, 1, 'woken by the riding pair\'s frame');
  });
});

describe('the links of a stopped replica', () => {
  it('stay closed: a membership change that arrives after the stop opens no link (none left dialing, none left registered)', async () => {
    // Found in review: KvsServer.close() closes its Peers, but a Ready persisting meanwhile sends
    // afterwards (Replica.handleReady), and the send first syncs the links with the configuration
    // (MemberLinks.sync → Peers.setPeers). A configuration entry in that Ready made a new PeerLink
    // that nothing ever closed: it dialed forever and stayed in the hub, taking the peerUp of the
    // replica's next start in the same process.
    const hub = new LinkHub();
    const b = await listen(new LinkHub(), 1, 2);
    const peers = new Peers({ version: PROTOCOL_VERSION, replicaId: 1, groupId: 1 }, [], undefined, hub);
    peers.close();
    // The replica's next start in this process (its peer not listening yet): its link backs off.
    const next = link(hub, 1, 1, 2, '127.0.0.1:1');
    await waitFor('the new link backs off', () => next.backingOff);
    // The old replica's late send, with a configuration that names replica 2.
    peers.setPeers([{ id: 2, address: b.address }]);
    peers.send([heartbeat(1, 2, 1)]);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(b.accepted, 0, 'nothing dialed the peer');
    assert.deepEqual(peers.ids(), []);
    hub.peerUp(1, 1, 2);
    assert.equal(next.stats.earlyDials, 1);
  });
});
