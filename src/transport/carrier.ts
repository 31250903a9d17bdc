// One outgoing TCP connection to another process, carrying the links of one or more replica pairs
// (docs/protocol.md §6.5). The pair that dialed it — whose HELLO opened it — sends plain frames;
// every other pair that rides it sends its frames inside CHANNEL frames. A carrier lives once: it
// dials, shakes hands, carries, and when it closes its users pick another (peer-link.ts reconnects
// with backoff, through the hub that knows which addresses share a process).
//
// A carrier that hears nothing for `idleMs` is abandoned. The accepting side sends a HELLO every
// KEEPALIVE_MS (inbound.ts), so silence means the path is dead even if TCP has not noticed: after a
// network partition heals, an old connection can stay stuck for minutes (TCP retransmission
// backoff) or for good (a stateful firewall that lost the flow drops its packets as INVALID, as
// kube-proxy's conntrack rule does). A connect that gets no HELLO back in time is abandoned the
// same way (a SYN lost in a partition is otherwise retried for about two minutes).
import net from 'node:net';
import {
  FrameDecoder,
  FrameType,
  decodeChannel,
  decodeHello,
  encodeChannelPrefix,
  encodeForward,
  encodeHello,
  type ChannelAddress,
  type Frame,
  type Hello,
} from '../wire/index.ts';
import { splitAddress } from '../address/address.ts';
import { coalesce } from './coalesce.ts';
import { FairQueue } from './fair-queue.ts';
import type { Tap } from './tap.ts';
import { every } from '../timers/every.ts';

/** How often the accepting side of a link says it is alive. */
export const KEEPALIVE_MS = 1000;
/** Several keepalives (and several election timeouts): a link silent this long is dead. */
export const IDLE_MS = 5000;
/**
 * Bytes the socket's own buffer may hold before frames wait in the carrier's queue instead, where
 * pairs take turns: a frame of one pair waits behind at most this much of the others'.
 */
export const SOCKET_LOW_WATER = 512 << 10;
/** A pair with less than this waiting is never refused, however much the others have queued. */
export const PAIR_RESERVE_BYTES = 1 << 20;

interface Batch {
  pair: ChannelAddress;
  frames: Buffer[];
  /** The request id of the FORWARD this batch is (see close). */
  forward?: number;
}

export class LinkError extends Error {
  override readonly name = 'LinkError';
  /** False when the request never left this process: retrying it cannot apply it twice. */
  constructor(
    message: string,
    readonly sent = true,
  ) {
    super(message);
  }
}

/** Why a carrier closed, as its users see it. */
export type LostReason = 'closed' | 'silent';

/** A replica pair's link, as a carrier sees it. */
export interface CarrierUser {
  /** group, this replica (from), the peer (to). */
  readonly pair: ChannelAddress;
  /** The handshake is done: frames go out now. */
  onReady(c: Carrier): void;
  /** The user now rides `to` (another connection to the same process); it hears onReady or onLost from it next. */
  onMoved(to: Carrier): void;
  /** The connection is gone: the user must find another. */
  onLost(c: Carrier, why: LostReason): void;
  /** The process at the other end does not host the user's peer (anymore): dial its own address. */
  onNotHosted(c: Carrier): void;
}

export interface CarrierOptions {
  /** host:port the carrier dials: the native door of its opening pair's peer. */
  address: string;
  /** The opening pair's HELLO (this replica's). */
  self: Hello;
  /** The replica the opening pair expects to reach. */
  peerId: number;
  /** Max bytes queued (waiting to connect, or in the socket's buffer). */
  maxQueueBytes: number;
  idleMs: number;
  /** Sees the HELLO the carrier writes (as its opening pair's). */
  tap?: Tap;
  /**
   * The opening pair's own connection, never shared (default false). A pair that a shared
   * connection's process refused (not hosted there) dials one of its own, as protocol.md §6.5
   * says, which the hub never hands over: else it would land on the same refusing connection
   * again, with its backoff reset.
   */
  own?: boolean;
  /** The handshake is done (the hub learns which process answered). */
  onHandshake(c: Carrier): void;
  /** The carrier closed, for whatever reason. */
  onClosed(c: Carrier): void;
}

interface PendingForward {
  resolve: (f: Frame) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class Carrier {
  readonly address: string;
  /** The pair that dialed: its frames go plain. */
  readonly opening: ChannelAddress;
  private readonly opts: CarrierOptions;
  private readonly socket: net.Socket;
  private readonly users = new Set<CarrierUser>();
  private ready = false;
  private closed = false;
  /**
   * Frames waiting, by pair: before the handshake (which pair goes plain is known only once it is
   * done) and while the socket's buffer is above SOCKET_LOW_WATER.
   */
  private readonly queue = new FairQueue<string, Batch>();
  private nextRequestId = 1;
  private readonly forwards = new Map<number, PendingForward>();
  /** When this connection last received anything (or was opened). */
  private heardAt = Date.now();
  private readonly stopIdleCheck: () => void;
  /** The protocol version of the peer's last HELLO; 1 until one arrives (the oldest we speak). */
  peerVersion = 1;
  /** The answering process's id, when its HELLO named one: other pairs may then ride along. */
  process: number | undefined;

  constructor(opts: CarrierOptions) {
    this.opts = opts;
    this.address = opts.address;
    this.opening = { group: opts.self.groupId, from: opts.self.replicaId, to: opts.peerId };
    // Before any timer: a bad address throws here and leaves nothing behind.
    const [host, port] = splitAddress(opts.address);
    this.stopIdleCheck = every(Math.max(10, Math.round(opts.idleMs / 4)), () => this.closeIfSilent());
    const s = net.connect({ host, port, noDelay: true });
    this.socket = s;
    const decoder = new FrameDecoder();
    s.on('connect', () => {
      s.setKeepAlive(true, 5000);
      const hello = encodeHello(opts.self);
      opts.tap?.(opts.self.replicaId, opts.peerId, hello);
      s.write(hello);
    });
    s.on('data', (chunk: Buffer) => {
      this.heardAt = Date.now();
      decoder.push(chunk);
      try {
        // A frame may close the carrier (its last user's peer not hosted): the rest of the chunk
        // is for nobody. Read on, a keepalive HELLO in it would be taken for a new handshake.
        for (let f = decoder.read(); f !== null && !this.closed; f = decoder.read()) this.onFrame(f);
      } catch {
        s.destroy(); // lost framing or a bad handshake: start over
      }
    });
    s.on('drain', () => this.pump());
    s.on('error', () => {});
    s.on('close', () => this.close('closed'));
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** The opening pair's alone: the hub puts no other pair on it. */
  get own(): boolean {
    return this.opts.own ?? false;
  }

  /** Adds a user; it hears onReady now if the handshake is already done. */
  attach(u: CarrierUser): void {
    if (this.closed) return u.onLost(this, 'closed');
    this.users.add(u);
    if (this.ready) u.onReady(this);
  }

  /** Removes a user; a carrier nobody uses closes. */
  detach(u: CarrierUser): void {
    this.users.delete(u);
    if (this.users.size === 0) this.close('closed');
  }

  /** Hands every user to `to` (a carrier to the same process) and closes without telling them. */
  handOver(to: Carrier): void {
    const users = [...this.users];
    this.users.clear();
    const queued = this.queue.clear();
    this.close('closed');
    for (const u of users) {
      u.onMoved(to);
      to.attach(u);
    }
    // What waited here for the handshake leaves on the carrier that stays (wrapped as needed there).
    for (const q of queued) to.send(q.pair, q.frames);
  }

  /**
   * Queues `pair`'s frames; false when they were dropped (closed, or over the byte bound: all
   * pairs' frames waiting here and in the socket, unless this pair has less than its reserve waiting).
   */
  send(pair: ChannelAddress, frames: Buffer[], forward?: number): boolean {
    if (this.closed) return false;
    let bytes = 0;
    for (const f of frames) bytes += f.length;
    if (this.ready && this.queue.isEmpty && this.socket.writableLength < SOCKET_LOW_WATER) {
      this.write(pair, frames); // the common case: nothing waits, straight to the socket
      return true;
    }
    const key = pairKey(pair);
    const waiting = this.queue.bytes + (this.ready ? this.socket.writableLength : 0);
    const own = this.queue.bytesOf(key);
    if (waiting + bytes > this.opts.maxQueueBytes && own + bytes > Math.min(PAIR_RESERVE_BYTES, this.opts.maxQueueBytes)) return false;
    this.queue.push(key, forward === undefined ? { pair, frames } : { pair, frames, forward }, bytes);
    this.pump();
    return true;
  }

  /** Relays a client request for `pair`'s peer and resolves with its response frame; `tap` sees the FORWARD. */
  forward(pair: ChannelAddress, type: number, body: Uint8Array, hops: number, timeoutMs: number, tap?: Tap): Promise<Frame> {
    if (!this.ready) return Promise.reject(new LinkError(`no connection to replica ${pair.to}`, false));
    return new Promise((resolve, reject) => {
      const id = this.nextRequestId++ >>> 0 || this.nextRequestId++;
      const timer = setTimeout(() => {
        this.forwards.delete(id);
        reject(new LinkError(`forward to replica ${pair.to} timed out`));
      }, timeoutMs);
      this.forwards.set(id, { resolve, reject, timer });
      const frame = encodeForward(id, { type, hops, body });
      tap?.(pair.from, pair.to, frame);
      if (!this.send(pair, [frame], id)) {
        clearTimeout(timer);
        this.forwards.delete(id);
        reject(new LinkError(`link to replica ${pair.to} is saturated`, false));
      }
    });
  }

  close(why: LostReason): void {
    if (this.closed) return;
    this.closed = true;
    this.ready = false;
    this.stopIdleCheck();
    this.socket.destroy();
    // A forward still in the queue was never written to the socket: it cannot have arrived, so the
    // caller may send it again (sent=false). One written may have been received and applied.
    const unsent = new Set<number>();
    for (const b of this.queue.clear()) if (b.forward !== undefined) unsent.add(b.forward);
    for (const [id, p] of this.forwards) {
      clearTimeout(p.timer);
      p.reject(unsent.has(id) ? new LinkError(`connection to ${this.address} closed before the request was sent`, false) : new LinkError(`connection to ${this.address} lost`));
    }
    this.forwards.clear();
    const users = [...this.users];
    this.users.clear();
    this.opts.onClosed(this);
    for (const u of users) u.onLost(this, why);
  }

  private isOpening(pair: ChannelAddress): boolean {
    return pair.group === this.opening.group && pair.from === this.opening.from && pair.to === this.opening.to;
  }

  /** Writes what waits, a batch of each pair in turn, until the socket's buffer is full enough. */
  private pump(): void {
    if (!this.ready || this.closed) return;
    this.queue.take(
      (b) => this.write(b.pair, b.frames),
      () => this.socket.writableLength < SOCKET_LOW_WATER,
    );
  }

  private write(pair: ChannelAddress, frames: Buffer[]): void {
    const s = this.socket;
    coalesce(s);
    const plain = this.isOpening(pair);
    for (const f of frames) {
      if (!plain) s.write(encodeChannelPrefix(pair, f));
      s.write(f);
    }
  }

  private onFrame(f: Frame): void {
    if (this.closed) return;
    if (!this.ready) {
      if (f.type !== FrameType.Hello) throw new LinkError('expected HELLO');
      const h = decodeHello(f.body);
      if (h.replicaId !== this.opts.peerId) throw new LinkError(`dialed replica ${this.opts.peerId}, reached ${h.replicaId}`);
      this.peerVersion = h.version;
      this.process = h.process;
      this.ready = true;
      // The hub may hand this carrier's users (and what they queued) to another carrier to the
      // same process, and close this one.
      this.opts.onHandshake(this);
      if (this.closed) return;
      this.pump();
      for (const u of [...this.users]) u.onReady(this);
      return;
    }
    if (f.type === FrameType.Channel) {
      const c = decodeChannel(f.body);
      if (c.frame.requestId === 0 && c.frame.type === FrameType.Error) {
        // protocol.md §6.5: the peer's process does not host that replica (anymore).
        for (const u of this.users) if (u.pair.group === c.group && u.pair.from === c.to && u.pair.to === c.from) this.notHosted(u);
        return;
      }
      this.answer(c.frame);
      return;
    }
    if (f.requestId === 0 && f.type === FrameType.Error) {
      // The same for the opening pair: its replica stopped there, the connection serves the others.
      for (const u of this.users) if (this.isOpening(u.pair)) this.notHosted(u);
      return;
    }
    this.answer(f);
  }

  private notHosted(u: CarrierUser): void {
    this.users.delete(u);
    u.onNotHosted(this);
    if (this.users.size === 0) this.close('closed');
  }

  /** A response to a forward; a HELLO after the handshake (keepalive) waits for no request id. */
  private answer(f: Frame): void {
    const pending = this.forwards.get(f.requestId);
    if (!pending) return; // a keepalive, or an answer to a forward that already timed out
    this.forwards.delete(f.requestId);
    clearTimeout(pending.timer);
    // The frame body may be a view into a socket chunk: copy what outlives this callback.
    pending.resolve({ type: f.type, requestId: f.requestId, body: Buffer.from(f.body) });
  }

  /** Nothing arrived for idleMs (no HELLO back, no keepalive): the path is dead; start over. */
  private closeIfSilent(): void {
    if (this.closed || Date.now() - this.heardAt < this.opts.idleMs) return;
    this.close('silent');
  }
}

function pairKey(p: ChannelAddress): string {
  return `${p.group}/${p.from}/${p.to}`;
}
