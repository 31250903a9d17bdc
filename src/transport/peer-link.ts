// One outgoing TCP link to a peer replica: handshake, coalesced writes, reconnect with backoff and
// jitter, and a byte bound on what may wait, so a slow or dead peer never grows memory or blocks
// the others. Raft tolerates lost messages, so over the bound they are dropped (and counted);
// forwarded client requests fail fast with UNAVAILABLE instead.
//
// A link that hears nothing for `idleMs` is replaced. The accepting side sends a HELLO every
// KEEPALIVE_MS (src/transport/inbound.ts), so silence means the path is dead even if TCP has not
// noticed: after a network partition heals, an old connection can stay stuck for minutes (TCP
// retransmission backoff) or for good (a stateful firewall that lost the flow drops its packets as
// INVALID, as kube-proxy's conntrack rule does). A connect that gets no HELLO back in time is
// abandoned the same way (a SYN lost in a partition is otherwise retried for about two minutes).
import net from 'node:net';
import { FrameDecoder, FrameType, decodeHello, encodeForward, encodeHello, type Frame, type Hello } from '../wire/index.ts';
import type { Tap } from './tap.ts';
import { coalesce } from './coalesce.ts';
import { every } from '../timers/every.ts';

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
}

/** How often the accepting side of a link says it is alive. */
export const KEEPALIVE_MS = 1000;
/** Several keepalives (and several election timeouts): a link silent this long is dead. */
export const IDLE_MS = 5000;

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

interface PendingForward {
  resolve: (f: Frame) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

const MIN_BACKOFF_MS = 50;
const MAX_BACKOFF_MS = 2000;

export class PeerLink {
  readonly peerId: number;
  private address: string;
  private readonly opts: PeerLinkOptions;
  private readonly maxQueueBytes: number;
  private socket: net.Socket | undefined;
  private ready = false;
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  private backoff = MIN_BACKOFF_MS;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private nextRequestId = 1;
  private forwards = new Map<number, PendingForward>();
  /** When this connection last received anything (or was opened). */
  private heardAt = 0;
  private readonly idleMs: number;
  private readonly stopIdleCheck: () => void;
  readonly stats = { framesSent: 0, bytesSent: 0, dropped: 0, connects: 0, silentReplaced: 0 };
  /** The protocol version of the peer's last HELLO; 1 until one arrives (the oldest we speak). */
  peerVersion = 1;

  constructor(opts: PeerLinkOptions) {
    this.opts = opts;
    this.peerId = opts.peerId;
    this.address = opts.address;
    this.maxQueueBytes = opts.maxQueueBytes ?? 64 << 20;
    this.idleMs = opts.idleMs ?? IDLE_MS;
    this.stopIdleCheck = every(Math.max(10, Math.round(this.idleMs / 4)), () => this.replaceIfSilent());
    this.connect();
  }

  get connected(): boolean {
    return this.ready;
  }

  /** The peer moved (e.g. restarted on another port): reconnect there. */
  setAddress(address: string): void {
    if (address === this.address) return;
    this.address = address;
    this.socket?.destroy();
  }

  /** Queues frames; returns false if they were dropped because the link is over its byte bound. */
  send(frames: Buffer[]): boolean {
    let bytes = 0;
    for (const f of frames) bytes += f.length;
    const waiting = this.ready ? this.socket!.writableLength : this.queuedBytes;
    if (this.closed || waiting + bytes > this.maxQueueBytes) {
      this.stats.dropped += frames.length;
      return false;
    }
    if (!this.ready) {
      for (const f of frames) this.queue.push(f);
      this.queuedBytes += bytes;
      return true;
    }
    this.write(frames);
    return true;
  }

  /** Relays a client request to this peer and resolves with its response frame. */
  forward(type: number, body: Uint8Array, hops: number, timeoutMs: number): Promise<Frame> {
    if (!this.ready) return Promise.reject(new LinkError(`no connection to replica ${this.peerId}`, false));
    return new Promise((resolve, reject) => {
      const id = this.nextRequestId++ >>> 0 || this.nextRequestId++;
      const timer = setTimeout(() => {
        this.forwards.delete(id);
        reject(new LinkError(`forward to replica ${this.peerId} timed out`));
      }, timeoutMs);
      this.forwards.set(id, { resolve, reject, timer });
      if (!this.send([encodeForward(id, { type, hops, body })])) {
        clearTimeout(timer);
        this.forwards.delete(id);
        reject(new LinkError(`link to replica ${this.peerId} is saturated`, false));
      }
    });
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    this.stopIdleCheck();
    this.socket?.destroy();
    this.failForwards('link closed');
  }

  private write(frames: Buffer[]): void {
    const s = this.socket!;
    coalesce(s);
    for (const f of frames) {
      s.write(f);
      this.stats.framesSent++;
      this.stats.bytesSent += f.length;
      this.opts.tap?.(this.opts.self.replicaId, this.peerId, f);
    }
  }

  private connect(): void {
    if (this.closed) return;
    const [host, port] = splitAddress(this.address);
    const s = net.connect({ host, port, noDelay: true });
    this.socket = s;
    this.heardAt = Date.now();
    const decoder = new FrameDecoder();
    s.on('connect', () => {
      s.setKeepAlive(true, 5000);
      const hello = encodeHello(this.opts.self);
      this.opts.tap?.(this.opts.self.replicaId, this.peerId, hello);
      s.write(hello);
    });
    s.on('data', (chunk: Buffer) => {
      this.heardAt = Date.now();
      decoder.push(chunk);
      try {
        for (let f = decoder.read(); f !== null; f = decoder.read()) this.onFrame(f);
      } catch {
        s.destroy(); // lost framing or a bad handshake: start over
      }
    });
    s.on('error', () => {});
    s.on('close', () => {
      this.ready = false;
      this.failForwards(`connection to replica ${this.peerId} lost`);
      if (this.socket === s) this.scheduleReconnect();
    });
  }

  private onFrame(f: Frame): void {
    if (!this.ready) {
      if (f.type !== FrameType.Hello) throw new LinkError('expected HELLO');
      const h = decodeHello(f.body);
      if (h.replicaId !== this.peerId) throw new LinkError(`dialed replica ${this.peerId}, reached ${h.replicaId}`);
      this.peerVersion = h.version;
      this.ready = true;
      this.backoff = MIN_BACKOFF_MS;
      this.stats.connects++;
      const queued = this.queue;
      this.queue = [];
      this.queuedBytes = 0;
      if (queued.length > 0) this.write(queued);
      return;
    }
    const pending = this.forwards.get(f.requestId);
    if (!pending) return; // answer to a forward that already timed out
    this.forwards.delete(f.requestId);
    clearTimeout(pending.timer);
    // The frame body may be a view into a socket chunk: copy what outlives this callback.
    pending.resolve({ type: f.type, requestId: f.requestId, body: Buffer.from(f.body) });
  }

  /** Nothing arrived for idleMs (no HELLO back, no keepalive): the path is dead; start over. */
  private replaceIfSilent(): void {
    const s = this.socket;
    if (this.closed || !s || s.destroyed || Date.now() - this.heardAt < this.idleMs) return;
    this.stats.silentReplaced++;
    s.destroy();
  }

  private scheduleReconnect(): void {
    if (this.closed) return;
    const random = this.opts.random ?? Math.random;
    const delay = this.backoff / 2 + random() * (this.backoff / 2);
    this.backoff = Math.min(MAX_BACKOFF_MS, this.backoff * 2);
    this.queue = [];
    this.queuedBytes = 0;
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  private failForwards(why: string): void {
    for (const p of this.forwards.values()) {
      clearTimeout(p.timer);
      p.reject(new LinkError(why));
    }
    this.forwards.clear();
  }
}

export function splitAddress(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  const port = Number(address.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`bad address "${address}" (want host:port)`);
  return [address.slice(0, i).replace(/^\[|\]$/g, ''), port];
}
