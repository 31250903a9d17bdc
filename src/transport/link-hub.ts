// The links of every replica one process hosts (`kvs host` hosts one of every group). Outgoing:
// the hub keeps one connection per process it talks to, and every replica pair between the two
// rides it (carrier.ts): one keepalive and one socket per pair of processes instead of per pair of
// replicas. (Frames of different groups share a writev only when their Readies run in the same
// event-loop turn, which under load is rare: docs/processes.md.) It learns that two addresses are one process
// from the answering HELLO, which names its process (protocol.md §6.1): the first link to each
// address dials it, and a second connection to a process already reached hands its pairs to the
// first and closes. Incoming: the replicas registered here answer CHANNEL frames (inbound.ts), and
// what arrives from a peer replica wakes this process's link back to it if that link waits out a
// reconnect backoff (peerUp): links are one connection per direction, so the peer reaching us says
// nothing to our link to it otherwise.
//
// A process without sharing (one replica each, as `kvs server` or the StatefulSet-per-group layout
// runs) simply has one replica in its hub; a peer of protocol version 2 names no process, and
// every pair keeps a connection of its own to it (a rolling upgrade runs both).
import { randomInt } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Message } from '../raft/types.ts';
import type { Forwarded, Hello, Request, Response } from '../wire/index.ts';
import { Carrier, IDLE_MS } from './carrier.ts';
import type { Tap } from './tap.ts';

/** What the hub needs of a hosted replica to serve the pairs that reach it on a shared connection. */
export interface HostedReplica {
  onRaft(msgs: Message[]): void;
  /** `raw` is the request as it arrived, so relaying it onward never re-encodes it. */
  execute(req: Request, raw: Forwarded): Promise<Response>;
  /** Sees the answers it writes. */
  tap?: Tap;
}

/** An outgoing link of a replica pair, as the hub wakes it (peer-link.ts). */
export interface OutgoingLink {
  /** group, this replica (from), the peer (to). */
  readonly pair: { group: number; from: number; to: number };
  /** The peer was heard from: a link waiting out a backoff dials now. */
  peerUp(): void;
}

export interface DialOptions {
  self: Hello;
  peerId: number;
  address: string;
  maxQueueBytes: number;
  idleMs?: number;
  /** Sees the HELLO of a connection this pair opens. */
  tap?: Tap;
  /** A connection of this pair's own: neither shared nor handed over (after a refusal, §6.5). */
  own?: boolean;
}

export class LinkHub {
  /** This process's id in HELLO answers: random per life, so a restarted process is a new one. */
  readonly process = randomInt(1, 2 ** 48);
  private readonly hosted = new Map<string, HostedReplica>();
  /** Outgoing links by pair (group/from/to), to wake when their peer is heard from. */
  // Keyed by numbers, not a string built per call: peerUp runs for every frame a peer sends.
  private readonly outgoing = new Map<number, Map<number, Map<number, OutgoingLink>>>();
  /** Which process answered at an address (learned from handshakes; forgotten with the carrier). */
  private readonly processAt = new Map<string, number>();
  /** The carrier every pair to that process rides. */
  private readonly byProcess = new Map<number, Carrier>();
  /** Whether links to one process share a connection (off: every pair dials its own). */
  readonly sharing: boolean;
  readonly stats = { dials: 0, handedOver: 0 };
  /**
   * Accepted shared connections whose opening pair's replica stopped (adopt): they still carry
   * the other pairs, and close with the last hosted replica.
   */
  private readonly kept = new Set<Socket>();

  constructor(opts: { sharing?: boolean } = {}) {
    this.sharing = opts.sharing ?? true;
  }

  /** Makes replica `id` of `group` reachable on this process's shared connections; returns its removal. */
  host(group: number, id: number, r: HostedReplica): () => void {
    const key = replicaKey(group, id);
    this.hosted.set(key, r);
    return () => {
      if (this.hosted.get(key) === r) this.hosted.delete(key);
      if (this.hosted.size === 0) for (const s of this.kept) s.destroy();
    };
  }

  /**
   * Keeps an accepted shared connection open after the replica that accepted it stopped: other
   * pairs ride it (their forwards in flight would otherwise fail with an unknown outcome), and its
   * own pair is answered "not hosted" (inbound.ts). Closed at once if nothing is hosted any more.
   */
  adopt(s: Socket): void {
    if (this.hosted.size === 0) return void s.destroy();
    this.kept.add(s);
    s.once('close', () => this.kept.delete(s));
  }

  /** Whether `s` is a connection kept after its replica stopped (adopt). */
  adopted(s: Socket): boolean {
    return this.kept.has(s);
  }

  /** Makes `link` one peerUp wakes; returns its removal. */
  register(link: OutgoingLink): () => void {
    const { group, from, to } = link.pair;
    let byFrom = this.outgoing.get(group);
    if (!byFrom) this.outgoing.set(group, (byFrom = new Map()));
    let byTo = byFrom.get(from);
    if (!byTo) byFrom.set(from, (byTo = new Map()));
    byTo.set(to, link);
    return () => {
      if (byTo.get(to) !== link) return;
      byTo.delete(to);
      if (byTo.size === 0 && byFrom.get(from) === byTo) byFrom.delete(from);
      if (byFrom.size === 0 && this.outgoing.get(group) === byFrom) this.outgoing.delete(group);
    };
  }

  /**
   * Replica `peer` of `group` reached replica `local` of this process (dialed it, or sent it a
   * frame): `local`'s link back to `peer`, if it waits out a reconnect backoff, dials now.
   */
  peerUp(group: number, local: number, peer: number): void {
    this.outgoing.get(group)?.get(local)?.get(peer)?.peerUp();
  }

  hostedReplica(group: number, id: number): HostedReplica | undefined {
    return this.hosted.get(replicaKey(group, id));
  }

  /**
   * A carrier towards `o.address` for the caller to attach to: the shared one if that address is
   * a process already reached, else a new connection.
   */
  carrierFor(o: DialOptions): Carrier {
    const known = this.sharing && !o.own ? this.processAt.get(o.address) : undefined;
    const shared = known === undefined ? undefined : this.byProcess.get(known);
    if (shared && !shared.isClosed) return shared;
    this.stats.dials++;
    return new Carrier({
      address: o.address,
      self: o.self,
      peerId: o.peerId,
      maxQueueBytes: o.maxQueueBytes,
      idleMs: o.idleMs ?? IDLE_MS,
      ...(o.tap ? { tap: o.tap } : {}),
      ...(o.own ? { own: true } : {}),
      onHandshake: (c) => this.reached(c),
      onClosed: (c) => this.gone(c),
    });
  }

  /** The peer at `address` is not in the process the hub thought (told so by that process). */
  forget(address: string): void {
    this.processAt.delete(address);
  }

  private reached(c: Carrier): void {
    if (!this.sharing || c.process === undefined || c.own || c.isClosed) return;
    this.processAt.set(c.address, c.process);
    const first = this.byProcess.get(c.process);
    if (first && first !== c) {
      this.stats.handedOver++;
      c.handOver(first);
    } else this.byProcess.set(c.process, c);
  }

  private gone(c: Carrier): void {
    if (c.process === undefined || this.byProcess.get(c.process) !== c) return;
    this.byProcess.delete(c.process);
    // The process may be gone for good (a restart is a new process): learn every address anew.
    for (const [address, p] of this.processAt) if (p === c.process) this.processAt.delete(address);
  }
}

function replicaKey(group: number, id: number): string {
  return `${group}/${id}`;
}
