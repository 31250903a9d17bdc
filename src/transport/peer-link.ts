// The link from one replica to one peer replica of its group: it rides a carrier (one TCP
// connection to the peer's process, shared with the process's other pairs when the hub can:
// link-hub.ts), reconnects with backoff and jitter when the carrier is lost, and bounds what may
// wait, so a slow or dead peer never grows memory or blocks the others. Raft tolerates lost
// messages, so over the bound they are dropped (and counted); forwarded client requests fail fast
// with UNAVAILABLE instead.
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
  private closed = false;
  /**
   * The process at the peer's address refused this pair on a shared connection (not hosted
   * there): dial a connection of its own until one shakes hands (protocol.md §6.5).
   */
  private ownConnection = false;
  readonly stats = { framesSent: 0, bytesSent: 0, dropped: 0, connects: 0, silentReplaced: 0 };

  constructor(opts: PeerLinkOptions) {
    this.opts = opts;
    this.peerId = opts.peerId;
    this.address = opts.address;
    this.pair = { group: opts.self.groupId, from: opts.self.replicaId, to: opts.peerId };
    this.maxQueueBytes = opts.maxQueueBytes ?? 64 << 20;
    this.hub = opts.hub ?? new LinkHub({ sharing: false });
    this.connect();
  }

  get connected(): boolean {
    return this.ready;
  }

  /** The protocol version of the peer's process; 1 until a handshake (the oldest we speak). */
  get peerVersion(): number {
    return this.ready ? this.carrier!.peerVersion : 1;
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
    clearTimeout(this.reconnectTimer);
    this.leaveCarrier();
    this.waiting = [];
    this.waitingBytes = 0;
  }

  onReady(c: Carrier): void {
    if (c !== this.carrier) return;
    this.ready = true;
    this.backoff = MIN_BACKOFF_MS;
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
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }
}
