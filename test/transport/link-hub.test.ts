// One connection between two processes carries every pair of replicas they host (link-hub.ts,
// protocol.md §6.5). Here a "process" is a LinkHub with replicas that each listen on their own
// port, as `kvs host` runs them; two of them live in this test process.
import assert from 'node:assert/strict';
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { EntryType, MsgType, type Message } from '../../src/raft/types.ts';
import { FrameSocket } from '../../src/transport/frame-socket.ts';
import { servePeerLink } from '../../src/transport/inbound.ts';
import { LinkHub, type HostedReplica } from '../../src/transport/link-hub.ts';
import { PeerLink } from '../../src/transport/peer-link.ts';
import { Carrier } from '../../src/transport/carrier.ts';
import { Peers } from '../../src/transport/peers.ts';
import {
  DEFAULT_MAX_FRAME_BYTES,
  FrameDecoder,
  FrameType,
  PROTOCOL_VERSION,
  decodeHello,
  decodeResponse,
  encodeChannelPrefix,
  encodeHello,
  encodeRaftMessages,
  encodeRequest,
  encodeResponse,
  type Frame,
  type Request,
} from '../../src/wire/index.ts';
import { decodeMembership, encodeMembership } from '../../src/wire/membership-codec.ts';
import { waitFor } from '../support/wait.ts';

interface Replica {
  group: number;
  id: number;
  address: string;
  got: Message[];
  executed: Request[];
  server: Server;
  /** Connections accepted and still open. */
  open: Set<Socket>;
  unhost: () => void;
}

/** Replica `id` of `group` in the process of `hub`, listening on `port` (0: any). */
async function replica(hub: LinkHub, group: number, id: number, port = 0, namesProcess = true, executeMs = 0): Promise<Replica> {
  const got: Message[] = [];
  const executed: Request[] = [];
  const open = new Set<Socket>();
  const self = { version: PROTOCOL_VERSION, replicaId: id, groupId: group };
  const hosted: HostedReplica = {
    onRaft: (msgs) => got.push(...msgs),
    execute: async (req) => {
      executed.push(req);
      if (executeMs > 0) await new Promise((r) => setTimeout(r, executeMs));
      return { kind: 'value', value: Buffer.from(`g${group}r${id}`) };
    },
  };
  const server = createServer((sock) => {
    open.add(sock);
    sock.on('close', () => open.delete(sock));
    sock.on('error', () => {}); // a reset after the test closed its side
    const conn = new FrameSocket(sock);
    conn.onFrame = (first) =>
      servePeerLink(conn, decodeHello(first.body), {
        self,
        accept: (h) => (h.groupId === group ? undefined : 'wrong group'),
        ...hosted,
        ...(namesProcess ? { hub } : {}),
        keepaliveMs: 50,
      });
    conn.listen();
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  const unhost = hub.host(group, id, hosted);
  return { group, id, address: `127.0.0.1:${(server.address() as AddressInfo).port}`, got, executed, server, open, unhost };
}

function heartbeat(from: number, to: number, round: number): Message {
  return { type: MsgType.Heartbeat, from, to, term: 1, commit: 0, round };
}

const cleanups: (() => void)[] = [];
after(() => {
  for (const c of cleanups.reverse()) c();
});

/** Process P's replicas 1, 4, 7 (groups 1–3) with links to process Q's replicas 2, 5, 8. */
async function twoProcesses(): Promise<{ p: LinkHub; q: LinkHub; qs: Replica[]; links: Peers[] }> {
  const p = new LinkHub();
  const q = new LinkHub();
  const qs = [await replica(q, 1, 2), await replica(q, 2, 5), await replica(q, 3, 8)];
  const links = qs.map((r) => new Peers({ version: PROTOCOL_VERSION, replicaId: r.id - 1, groupId: r.group }, [{ id: r.id, address: r.address }], undefined, p));
  cleanups.push(() => {
    for (const l of links) l.close();
    for (const r of qs) r.server.close();
    for (const r of qs) for (const s of r.open) s.destroy();
  });
  await waitFor('every link connected', () => links.every((l) => l.stats()[0]?.connected));
  return { p, q, qs, links };
}

const openConnections = (qs: Replica[]): number => qs.reduce((n, r) => n + r.open.size, 0);

describe('links between two processes', () => {
  it('share one connection: every pair delivered to its own replica, forwards answered', async () => {
    const { p, qs, links } = await twoProcesses();
    await waitFor('the redundant connections to close', () => openConnections(qs) === 1);
    assert.equal(p.stats.dials, 3);
    assert.equal(p.stats.handedOver, 2);
    links.forEach((l, i) => l.send([heartbeat(qs[i]!.id - 1, qs[i]!.id, 10 + i), heartbeat(qs[i]!.id - 1, qs[i]!.id, 20 + i)]));
    await waitFor('every heartbeat', () => qs.every((r) => r.got.length === 2));
    qs.forEach((r, i) => assert.deepEqual(r.got.map((m) => [m.to, m.type === MsgType.Heartbeat && m.round]), [[r.id, 10 + i], [r.id, 20 + i]]));
    // A forwarded request rides the shared connection to the replica it names; its answer comes back.
    for (const [i, l] of links.entries()) {
      const get = encodeRequest(0, { op: 'get', key: Buffer.from('k'), consistency: 'linearizable' });
      const res = await l.forward(qs[i]!.id, FrameType.Get, get.subarray(9), 0, 5000);
      const answer = decodeResponse(res.type, res.body);
      assert.deepEqual(answer, { kind: 'value', value: Buffer.from(`g${qs[i]!.group}r${qs[i]!.id}`) });
    }
    assert.deepEqual(
      qs.map((r) => r.executed.length),
      [1, 1, 1],
    );
    assert.equal(openConnections(qs), 1);
  });

  it('a lost shared connection: every pair reconnects, and they share one again', async () => {
    const { p, qs, links } = await twoProcesses();
    await waitFor('one connection', () => openConnections(qs) === 1);
    for (const r of qs) for (const s of r.open) s.destroy();
    // Every pair dials its own address again (the process may have restarted elsewhere).
    await waitFor('every pair to dial again', () => p.stats.dials === 6);
    await waitFor('every link connected again', () => links.every((l) => l.stats()[0]?.connected));
    await waitFor('one connection again', () => openConnections(qs) === 1 && p.stats.handedOver === 4);
    // Sent until delivered, as Raft sends again what a lost connection took.
    await waitFor('every heartbeat after the reconnect', () => {
      links.forEach((l, i) => l.send([heartbeat(qs[i]!.id - 1, qs[i]!.id, 30)]));
      return qs.every((r) => r.got.some((m) => m.type === MsgType.Heartbeat && m.round === 30));
    });
    assert.equal(openConnections(qs), 1);
  });

  it('a replica that left the process: its pair dials the address again and reaches where it went', async () => {
    const { qs, links } = await twoProcesses();
    await waitFor('one connection', () => openConnections(qs) === 1);
    // Replica 5 leaves process Q; a new process R starts it on the same port.
    const moved = qs[1]!;
    const port = Number(moved.address.split(':')[1]);
    moved.unhost();
    await new Promise<void>((r) => moved.server.close(() => r()));
    const r = new LinkHub();
    const there = await replica(r, 2, 5, port);
    cleanups.push(() => {
      there.server.close();
      for (const s of there.open) s.destroy();
    });
    // Sent on the shared connection, refused by Q (not hosted), then sent again by Raft as it would.
    await waitFor('the pair to reach process R', () => {
      links[1]!.send([heartbeat(4, 5, 40)]);
      return there.got.some((m) => m.type === MsgType.Heartbeat && m.round === 40);
    });
    assert.ok(!moved.got.some((m) => m.type === MsgType.Heartbeat && m.round === 40), 'Q never took a heartbeat for a replica it no longer hosts');
    // The other pairs still share their connection to Q.
    links[0]!.send([heartbeat(1, 2, 41)]);
    links[2]!.send([heartbeat(7, 8, 41)]);
    await waitFor('the others still delivered', () => [qs[0]!, qs[2]!].every((x) => x.got.some((m) => m.type === MsgType.Heartbeat && m.round === 41)));
    assert.equal(qs[0]!.open.size + qs[2]!.open.size + moved.open.size, 1);
  });

  it('a process that names none (protocol 2) gets a connection per pair, and frames as before', async () => {
    const p = new LinkHub();
    // One process answering as protocol 2 does: no process in its HELLO, so nothing rides along.
    const q = new LinkHub();
    const old = [await replica(q, 1, 2, 0, false), await replica(q, 2, 5, 0, false)];
    const links = old.map((r) => new Peers({ version: PROTOCOL_VERSION, replicaId: r.id - 1, groupId: r.group }, [{ id: r.id, address: r.address }], undefined, p));
    cleanups.push(() => {
      for (const l of links) l.close();
      for (const r of old) r.server.close();
    });
    await waitFor('both connected', () => links.every((l) => l.stats()[0]?.connected));
    links.forEach((l, i) => l.send([heartbeat(old[i]!.id - 1, old[i]!.id, 50)]));
    await waitFor('both heartbeats', () => old.every((r) => r.got.length === 1));
    assert.equal(openConnections(old), 2);
    assert.equal(p.stats.handedOver, 0);
  });

  it('a protocol 2 dialer gets the HELLO it reads: no process named', async () => {
    const q = new LinkHub();
    const r = await replica(q, 1, 2);
    cleanups.push(() => r.server.close());
    for (const version of [2, 3]) {
      const answer = await new Promise<Buffer>((resolve, reject) => {
        const [host, port] = r.address.split(':');
        const s = createConnection({ host: host!, port: Number(port) }, () => s.write(encodeHello({ version, replicaId: 1, groupId: 1 })));
        const d = new FrameDecoder();
        s.on('data', (b: Buffer) => {
          d.push(b);
          const f = d.read();
          if (f) {
            s.destroy();
            resolve(Buffer.from(f.body));
          }
        });
        s.on('error', reject);
      });
      const h = decodeHello(answer);
      if (version === 2) assert.equal(answer.length, 14, 'the old layout: magic, version, replica, group');
      assert.equal(h.process, version >= 3 ? q.process : undefined);
    }
  });
});


/** A listening socket that answers every dialer's HELLO as replica `id` of process `process` and records what it reads. */
async function fakeProcess(id: number, process: number): Promise<{ address: string; conns: Socket[]; server: Server }> {
  const conns: Socket[] = [];
  const server = createServer((sock) => {
    conns.push(sock);
    sock.on('error', () => {});
    const d = new FrameDecoder();
    let shaken = false;
    sock.on('data', (b: Buffer) => {
      d.push(b);
      for (let f = d.read(); f !== null; f = d.read()) {
        if (shaken) continue;
        shaken = true;
        const h = decodeHello(f.body);
        sock.write(encodeHello({ version: PROTOCOL_VERSION, replicaId: id, groupId: h.groupId, process }));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => {
    server.close();
    for (const s of conns) s.destroy();
  });
  return { address: `127.0.0.1:${(server.address() as AddressInfo).port}`, conns, server };
}

describe('faults on shared links (found in review, 2026-12-06)', () => {
  it('a refusal and a keepalive read in one chunk leave no closed connection behind as the shared one', async () => {
    const p = new LinkHub();
    const processId = 777;
    const two = await fakeProcess(2, processId);
    const five = await fakeProcess(5, processId);
    const a = new Peers({ version: PROTOCOL_VERSION, replicaId: 1, groupId: 1 }, [{ id: 2, address: two.address }], undefined, p);
    await waitFor('pair 1→2 connected', () => a.stats()[0]?.connected);
    const b = new Peers({ version: PROTOCOL_VERSION, replicaId: 4, groupId: 2 }, [{ id: 5, address: five.address }], undefined, p);
    await waitFor('pair 4→5 rides the first connection', () => p.stats.handedOver === 1 && b.stats()[0]?.connected);
    a.close(); // pair 4→5 is now the shared connection's only user
    cleanups.push(() => b.close());
    // Process 777 refuses pair 4→5 (replica 5 not hosted there) and says "alive" in the same chunk,
    // as it reads when this process's loop was busy for a moment.
    const notHosted = encodeResponse(0, { kind: 'error', error: { code: 'UNAVAILABLE', message: 'replica 5 of group 2 is not hosted by this process' } });
    const keepalive = encodeHello({ version: PROTOCOL_VERSION, replicaId: 2, groupId: 1, process: processId });
    two.conns[0]!.write(Buffer.concat([encodeChannelPrefix({ group: 2, from: 5, to: 4 }, notHosted), notHosted, keepalive]));
    // The refused pair dials a connection of its own; a new pair to the process dials anew too.
    await waitFor('pair 4→5 on a connection of its own', () => five.conns.length === 2 && b.stats()[0]?.connected);
    const c = new Peers({ version: PROTOCOL_VERSION, replicaId: 1, groupId: 1 }, [{ id: 2, address: two.address }], undefined, p);
    cleanups.push(() => c.close());
    await waitFor('a new pair to that process connected', () => c.stats()[0]?.connected);
    assert.equal(two.conns.length, 2, 'it dialed: the closed connection was not kept as the shared one');
  });

  it('a pair refused by a process keeps a connection of its own: no hand-over back, no dial storm', async () => {
    const { p, qs, links } = await twoProcesses();
    await waitFor('one connection', () => openConnections(qs) === 1);
    // Replica 5 stops being hosted while its door still answers (a server closing: links first).
    qs[1]!.unhost();
    const dials = p.stats.dials;
    await waitFor('pair 4→5 delivered again', () => {
      links[1]!.send([heartbeat(4, 5, 60)]);
      return qs[1]!.got.some((m) => m.type === MsgType.Heartbeat && m.round === 60);
    });
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(p.stats.dials - dials, 1, 'one dial of its own, not one per send');
    assert.equal(openConnections(qs), 2);
  });

  it('frames packed to the frame limit still fit once a riding pair wraps them', async () => {
    const { p, qs, links } = await twoProcesses();
    await waitFor('one connection', () => openConnections(qs) === 1);
    const dials = p.stats.dials;
    // Two appends that the default packing puts in one frame a few bytes under the limit: wrapped
    // in a CHANNEL prefix it would be over, and the acceptor drops the connection for it.
    const append = (from: number, to: number, bytes: number, index: number): Message => ({
      type: MsgType.Append,
      from,
      to,
      term: 1,
      prevIndex: index - 1,
      prevTerm: 1,
      commit: 0,
      entries: [{ index, term: 1, type: EntryType.Normal, data: Buffer.alloc(bytes, 7) }],
    });
    const first = 2 * 1024 * 1024;
    const probe = (second: number): number => encodeRaftMessages([append(1, 2, first, 1), append(1, 2, second, 2)])[0]!.length;
    const second = first + (DEFAULT_MAX_FRAME_BYTES - 5 - probe(first));
    assert.equal(probe(second), DEFAULT_MAX_FRAME_BYTES - 5, 'the test packs a frame 5 bytes under the limit');
    links.forEach((l, i) => l.send([append(qs[i]!.id - 1, qs[i]!.id, first, 1), append(qs[i]!.id - 1, qs[i]!.id, second, 2)]));
    await waitFor('every pair got both appends', () => qs.every((r) => r.got.filter((m) => m.type === MsgType.Append).length === 2));
    assert.equal(p.stats.dials, dials, 'the shared connection was never dropped');
    assert.equal(openConnections(qs), 1);
  });

  it('a new address during a reconnect backoff: one connection, closed with the link', async () => {
    const q = new LinkHub();
    const r = await replica(q, 1, 2, 0, false);
    cleanups.push(() => r.server.close());
    // Nothing listens at first: the link waits out a backoff, then learns the replica's address.
    const dead = createServer();
    await new Promise<void>((res) => dead.listen(0, '127.0.0.1', res));
    const deadAddress = `127.0.0.1:${(dead.address() as AddressInfo).port}`;
    await new Promise<void>((res) => dead.close(() => res()));
    const link = new PeerLink({ self: { version: PROTOCOL_VERSION, replicaId: 1, groupId: 1 }, peerId: 2, address: deadAddress, random: () => 1 });
    await new Promise((res) => setTimeout(res, 30)); // refused, backing off
    link.setAddress(r.address);
    await waitFor('connected at the new address', () => link.connected);
    await new Promise((res) => setTimeout(res, 300)); // past the old backoff
    assert.equal(r.open.size, 1, 'one connection, not one per timer');
    link.close();
    await waitFor('no connection left open', () => r.open.size === 0);
  });

  it('a bad peer address is refused where it enters, and a link given one leaves no timer behind', async () => {
    assert.throws(() => decodeMembership(encodeMembership(1, { op: 'add', group: 1, replicaId: 4, address: 'no-port' }).subarray(9)), /host:port/);
    assert.throws(() => decodeMembership(encodeMembership(1, { op: 'add', group: 1, replicaId: 4, address: 'h:99999' }).subarray(9)), /host:port/);
    assert.equal(decodeMembership(encodeMembership(1, { op: 'add', group: 1, replicaId: 4, address: 'kvs-1.kvs:7000' }).subarray(9)).address, 'kvs-1.kvs:7000');
    assert.throws(() => new PeerLink({ self: { version: PROTOCOL_VERSION, replicaId: 1, groupId: 1 }, peerId: 2, address: 'no-port', idleMs: 20 }), /host:port/);
    // Its idle check would have fired by now, on a socket that never existed, and ended the process.
    await new Promise((res) => setTimeout(res, 100));
  });
});

/** A process that answers the handshake as replica 2 and then reads nothing until `resume()`. */
async function stalledProcess(): Promise<{ address: string; frames: Frame[]; resume: () => void }> {
  const frames: Frame[] = [];
  let sock: Socket | undefined;
  const server = createServer((s) => {
    sock = s;
    s.on('error', () => {});
    const d = new FrameDecoder();
    let shaken = false;
    s.on('data', (b: Buffer) => {
      d.push(b);
      for (let f = d.read(); f !== null; f = d.read()) {
        if (shaken) frames.push({ type: f.type, requestId: f.requestId, body: Buffer.from(f.body) });
        else {
          shaken = true;
          s.write(encodeHello({ version: PROTOCOL_VERSION, replicaId: 2, groupId: 1, process: 99 }));
          s.pause();
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => {
    server.close();
    sock?.destroy();
  });
  return { address: `127.0.0.1:${(server.address() as AddressInfo).port}`, frames, resume: () => sock?.resume() };
}

describe('a replica that stops in a process that hosts others', () => {
  it('leaves the shared connection it accepted to the other pairs: their forwards in flight are answered', async () => {
    const p = new LinkHub();
    const q = new LinkHub();
    const qs = [await replica(q, 1, 2, 0, true, 300), await replica(q, 2, 5, 0, true, 300), await replica(q, 3, 8, 0, true, 300)];
    const links = qs.map((r) => new Peers({ version: PROTOCOL_VERSION, replicaId: r.id - 1, groupId: r.group }, [{ id: r.id, address: r.address }], undefined, p));
    cleanups.push(() => {
      for (const l of links) l.close();
      for (const r of qs) r.server.close();
      for (const r of qs) for (const s of r.open) s.destroy();
      for (const r of qs) r.unhost();
    });
    await waitFor('every link connected over one connection', () => links.every((l) => l.stats()[0]?.connected) && openConnections(qs) === 1);
    const stopping = qs.findIndex((r) => r.open.size === 1);
    const other = (stopping + 1) % 3;
    const request = encodeRequest(0, { op: 'get', key: Buffer.from('k'), consistency: 'linearizable' });
    const inFlight = links[other]!.forward(qs[other]!.id, request[4]!, request.subarray(9), 0, 5000);
    await waitFor('the forward reached its replica', () => qs[other]!.executed.length === 1);
    // The replica that accepted the connection stops, as KvsServer.close does: out of the hub,
    // its listener closed, the shared connection handed to the hub.
    const stopped = qs[stopping]!;
    stopped.unhost();
    stopped.server.close();
    for (const s of stopped.open) q.adopt(s);
    const answer = decodeResponse((await inFlight).type, (await inFlight).body);
    assert.deepEqual(answer, { kind: 'value', value: Buffer.from(`g${qs[other]!.group}r${qs[other]!.id}`) }, 'answered, not lost with the connection');
    // The other pairs go on over the same connection; the stopped one's pair is told and leaves it.
    const dials = p.stats.dials;
    await waitFor('the other pairs still delivered', () => {
      for (const [i, l] of links.entries()) if (i !== stopping) l.send([heartbeat(qs[i]!.id - 1, qs[i]!.id, 70)]);
      return qs.every((r, i) => i === stopping || r.got.some((m) => m.type === MsgType.Heartbeat && m.round === 70));
    });
    await waitFor('the stopped pair let go of the connection', () => {
      links[stopping]!.send([heartbeat(qs[stopping]!.id - 1, qs[stopping]!.id, 71)]);
      return links[stopping]!.stats()[0]?.connected === false;
    });
    for (const [i, l] of links.entries()) if (i !== stopping) assert.ok(l.stats()[0]?.connected, `pair ${i} still connected`);
    assert.equal(qs.reduce((n, r, i) => n + (i === stopping ? 0 : r.open.size), 0), 0, 'no new connection to the others: they ride the old one');
    assert.ok(p.stats.dials - dials <= 3, 'only the stopped pair dials (its own address, refused)');
    // The last replica leaving the process closes what the hub kept.
    for (const [i, r] of qs.entries()) if (i !== stopping) r.unhost();
    await waitFor('the kept connection closed with the last replica', () => stopped.open.size === 0);
  });
});

describe('pairs take turns on a shared connection', () => {
  const self = { version: PROTOCOL_VERSION, replicaId: 1, groupId: 1 };
  const opening = { group: 1, from: 1, to: 2 };
  const riding = { group: 2, from: 4, to: 5 };
  const bulk = (): Buffer => encodeResponse(7, { kind: 'value', value: Buffer.alloc(64 << 10, 1) });

  async function carrierTo(address: string, maxQueueBytes: number): Promise<Carrier> {
    let ready = false;
    const c = new Carrier({ address, self, peerId: 2, maxQueueBytes, idleMs: 60_000, onHandshake: () => (ready = true), onClosed: () => {} });
    cleanups.push(() => c.close('closed'));
    await waitFor('handshake', () => ready);
    return c;
  }

  it('a heartbeat of one pair waits behind a little of the backlog of another, not all of it', async () => {
    const peer = await stalledProcess();
    const c = await carrierTo(peer.address, 64 << 20);
    // Far more than the kernel's socket buffers hold: most of it waits in this process.
    for (let i = 0; i < 512; i++) assert.ok(c.send(opening, [bulk()]), `bulk frame ${i} queued`);
    await new Promise((r) => setTimeout(r, 50)); // what the kernel takes, it takes
    assert.ok(c.send(riding, encodeRaftMessages([heartbeat(4, 5, 1)])));
    peer.resume();
    await waitFor('everything delivered', () => peer.frames.length === 513, 20_000);
    const at = peer.frames.findIndex((f) => f.type === FrameType.Channel);
    const bytesBefore = peer.frames.slice(0, at).reduce((n, f) => n + f.body.length, 0);
    assert.ok(at < 512, 'the heartbeat did not wait for the whole backlog');
    // What was already in the kernel and the socket's buffer went first, and nothing more.
    // What was already in the kernel's buffers and the socket's went first (~4 MiB here), and a
    // turn of the other pair's at most: far less than the 32 MiB backlog.
    assert.ok(bytesBefore < 16 << 20, `${bytesBefore} bytes went first`);
  });

  it('one pair over the byte bound does not shut the others out', async () => {
    const peer = await stalledProcess();
    const c = await carrierTo(peer.address, 4 << 20);
    let sent = 0;
    while (c.send(opening, [bulk()])) if (++sent > 10_000) assert.fail('the bound never refused');
    // The flooding pair's heartbeats are refused too: no gap under the bound is left.
    while (c.send(opening, encodeRaftMessages([heartbeat(1, 2, 2)]))) if (++sent > 100_000) assert.fail('the bound never refused');
    assert.ok(c.send(riding, encodeRaftMessages([heartbeat(4, 5, 2)])), 'another pair still gets its heartbeat in');
    peer.resume();
    await waitFor('the heartbeat delivered', () => peer.frames.some((f) => f.type === FrameType.Channel), 20_000);
  });
});
