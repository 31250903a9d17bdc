// The link from one replica to one peer replica of its group: it rides a carrier (one TCP
// connection to the peer's process, shared with the process's other pairs when the hub can:
// link-hub.ts), reconnects with backoff and jitter when the carrier is lost, and bounds what may
// wait, so a slow or dead peer never grows memory or blocks the others. Raft tolerates lost
// messages, so over the bound they are dropped (and counted); forwarded client requests fail fast
// with UNAVAILABLE instead. A link waiting out a backoff dials at once when the peer is heard from
// (it dialed us, or sent us a frame: the hub calls peerUp), since it is evidently up again.
import type { ChannelAddress, Frame, Hello } from '../wire/index.ts';
import { Carrier, LinkError, type CarrierUser, type LostReason } from './carrier.ts';
import { LinkHub } from './link-hub.ts';
import type { Tap } from './tap.ts';

export interface PeerLinkOptions {
  self: Hello;
  peerId: number;
  /** host:port of the peer's native door. */
  address: string;
  /** Max bytes queued for this peer (waiting to connect or in the socket's buffer). */
  maxQueueBytes?: number;
  random?: () => number;
  tap?: Tap;
  /** Replace the connection when nothing arrived on it for this long (default IDLE_MS). */
  idleMs?: number;
  /** The process's links (default: a hub of this link's own, which shares with nobody). */
  hub?: LinkHub;
}

const MIN_BACKOFF_MS = 50;
const MAX_BACKOFF_MS = 2000;

export class PeerLink implements CarrierUser {
  readonly peerId: number;
  readonly pair: ChannelAddress;
  private address: string;
  private readonly opts: PeerLinkOptions;
  private readonly hub: LinkHub;
  private readonly maxQueueBytes: number;
  /** The carrier this link rides, dialing or ready; none while it waits out a backoff. */
  private carrier: Carrier | undefined;
  private ready = false;
  /** Frames sent while waiting out a backoff: they leave on the next carrier. */
  private waiting: Buffer[] = [];
  private waitingBytes = 0;
  private backoff = MIN_BACKOFF_MS;
  private reconnectTimer: NodeJS.Timeout | undefined;
  /**
   * A dial was made early (peerUp) since the last handshake or timed dial: more news of the peer
   * waits for the timer, so a peer that reaches us but cannot be reached costs at most one extra
   * dial per backoff, not one per frame it sends.
   */
  private dialedEarly = false;
  private closed = false;
  /** Removes this link from the hub's registry (peerUp). */
  private readonly unregister: () => void;
  /**
   * The process at the peer's address refused this pair on a shared connection (not hosted
   * there): dial a connection of its own until one shakes hands (protocol.md §6.5).
   */
  private ownConnection = false;
  /** `earlyDials`: reconnects made before the backoff ran out, because the peer was heard from (peerUp). */
  readonly stats = { framesSent: 0, bytesSent: 0, dropped: 0, connects: 0, silentReplaced: 0, earlyDials: 0 };

  constructor(opts: PeerLinkOptions) {
    this.opts = opts;
    this.peerId = opts.peerId;
    this.address = opts.address;
    this.pair = { group: opts.self.groupId, from: opts.self.replicaId, to: opts.peerId };
    this.maxQueueBytes = opts.maxQueueBytes ?? 64 << 20;
    this.hub = opts.hub ?? new LinkHub({ sharing: false });
    this.unregister = this.hub.register(this);
    this.connect();
  }

  get connected(): boolean {
    return this.ready;
  }

  /** The protocol version of the peer's process; 1 until a handshake (the oldest we speak). */
  get peerVersion(): number {
    return this.ready ? this.carrier!.peerVersion : 1;
  }

  /** Waiting out a reconnect backoff (no connection, dialing or up). */
  get backingOff(): boolean {
    return this.reconnectTimer !== undefined;
  }

  /** The backoff the next failed connection waits (half of it to all of it): doubled at each failure. */
  get backoffMs(): number {
    return this.backoff;
  }

  /**
   * The peer was heard from (it dialed us, or a frame of it arrived): if this link waits out a
   * backoff, the peer is evidently up again, so dial now. Without this, a replica that restarted
   * while a peer's backoff had grown (to MAX_BACKOFF_MS) stayed unreachable from that peer for up
   * to that long, though it could already reach the peer: a leadership transfer to it got no
   * votes or answers from that peer meanwhile.
   */
  peerUp(): void {
    if (this.closed || this.reconnectTimer === undefined || this.dialedEarly) return;
    this.dialedEarly = true;
    this.stats.earlyDials++;
    this.connect();
  }

  /** The peer moved (e.g. restarted on another port): reconnect there. */
  setAddress(address: string): void {
    if (address === this.address) return;
    this.address = address;
    this.leaveCarrier();
    this.connect(); // at once: a reconnect waiting out its backoff is for the old address
  }

  /** Queues frames; returns false if they were dropped because the link is over its byte bound. */
  send(frames: Buffer[]): boolean {
    let bytes = 0;
    for (const f of frames) bytes += f.length;
    let sent: boolean;
    if (this.closed) sent = false;
    else if (this.carrier) sent = this.carrier.send(this.pair, frames);
    else if (this.waitingBytes + bytes > this.maxQueueBytes) sent = false;
    else {
      for (const f of frames) this.waiting.push(f);
      this.waitingBytes += bytes;
      sent = true;
    }
    if (!sent) {
      this.stats.dropped += frames.length;
      return false;
    }
    this.stats.framesSent += frames.length;
    this.stats.bytesSent += bytes;
    if (this.opts.tap) for (const f of frames) this.opts.tap(this.pair.from, this.peerId, f);
    return true;
  }

  /** Relays a client request to this peer and resolves with its response frame. */
  forward(type: number, body: Uint8Array, hops: number, timeoutMs: number): Promise<Frame> {
    if (!this.ready) return Promise.reject(new LinkError(`no connection to replica ${this.peerId}`, false));
    return this.carrier!.forward(this.pair, type, body, hops, timeoutMs, this.opts.tap);
  }

  close(): void {
    this.closed = true;
    this.unregister();
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.leaveCarrier();
    this.waiting = [];
    this.waitingBytes = 0;
  }

  onReady(c: Carrier): void {
    if (c !== this.carrier) return;
    this.ready = true;
    this.backoff = MIN_BACKOFF_MS;
    this.dialedEarly = false;
    if (c.own) this.ownConnection = false; // reached on its own: later reconnects share again
    this.stats.connects++;
  }

  onMoved(to: Carrier): void {
    this.carrier = to;
  }

  onLost(c: Carrier, why: LostReason): void {
    if (c !== this.carrier) return;
    if (why === 'silent') this.stats.silentReplaced++;
    this.carrier = undefined;
    this.ready = false;
    this.scheduleReconnect();
  }

  onNotHosted(c: Carrier): void {
    if (c !== this.carrier) return;
    this.hub.forget(this.address);
    this.ownConnection = true;
    this.carrier = undefined;
    this.ready = false;
    this.scheduleReconnect();
  }

  private connect(): void {
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    if (this.closed) return;
    const c = this.hub.carrierFor({
      self: this.opts.self,
      peerId: this.peerId,
      address: this.address,
      maxQueueBytes: this.maxQueueBytes,
      idleMs: this.opts.idleMs,
      ...(this.opts.tap ? { tap: this.opts.tap } : {}),
      ...(this.ownConnection ? { own: true } : {}),
    });
    this.carrier = c;
    const waiting = this.waiting;
    this.waiting = [];
    this.waitingBytes = 0;
    c.attach(this);
    if (waiting.length > 0 && this.carrier === c) c.send(this.pair, waiting);
  }

  private leaveCarrier(): void {
    const c = this.carrier;
    this.carrier = undefined;
    this.ready = false;
    c?.detach(this);
  }

  private scheduleReconnect(): void {
    if (this.closed) return;
    const random = this.opts.random ?? Math.random;
    const delay = this.backoff / 2 + random() * (this.backoff / 2);
    this.backoff = Math.min(MAX_BACKOFF_MS, this.backoff * 2);
    this.reconnectTimer = setTimeout(() => {
      this.dialedEarly = false;
      this.connect();
    }, delay);
  }
}
