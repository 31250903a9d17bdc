// One pipelined connection to a replica's native door: many requests in flight, answers matched by
// request id in whatever order they come.
import net from 'node:net';
import { FrameDecoder, MAX_REQUEST_BODY_BYTES, decodeResponse, encodeRequest, requestBodySize, requestTooLarge, type Frame, type Request, type Response } from '../wire/index.ts';
import { splitAddress } from '../address/address.ts';
import { coalesce } from '../transport/coalesce.ts';
import { UnreachableError } from '../cluster/group-call.ts';

/** This connection could not carry a request: refused, reset, or no answer in time (`sent`: it may have arrived). */
export class ConnectionError extends UnreachableError {
  override readonly name = 'ConnectionError';
}

interface Pending {
  resolve: (f: Frame) => void;
  reject: (e: Error) => void;
}

export class Connection {
  readonly address: string;
  private socket: net.Socket | undefined;
  private connecting: Promise<void> | undefined;
  private pending = new Map<number, Pending>();
  private nextId = 1;
  /**
   * Chunks received on any socket of this connection so far. A count, not a time: with a clock of
   * whole milliseconds, an answer and the next request can share a millisecond, and the request
   * would then seem to have heard something after it left.
   */
  private chunksHeard = 0;
  private closed = false;

  constructor(address: string) {
    this.address = address;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  async request(req: Request, timeoutMs: number): Promise<Response> {
    // Refused here, not sent: the door would drop the connection on a frame over its limit.
    const bytes = requestBodySize(req);
    if (bytes > MAX_REQUEST_BODY_BYTES) return { kind: 'error', error: requestTooLarge(bytes) };
    return this.exchange((id) => encodeRequest(id, req), timeoutMs);
  }

  /**
   * `call`, with the answer decoded as a response. A malformed answer throws ConnectionError with
   * sent=true: the request arrived and what it did is unknown (a write may have applied).
   */
  async exchange(encode: (requestId: number) => Uint8Array, timeoutMs: number): Promise<Response> {
    const f = await this.call(encode, timeoutMs);
    try {
      return decodeResponse(f.type, f.body);
    } catch (e) {
      // A broken answer: the request arrived, what it did is unknown. The connection is suspect.
      this.replace();
      throw new ConnectionError(`malformed answer from ${this.address}: ${(e as Error).message}`, true);
    }
  }

  /**
   * Sends the frame `encode` builds for a request id; resolves with the answering frame. The
   * connect (its own, or one under way for another request) counts against `timeoutMs`.
   */
  async call(encode: (requestId: number) => Uint8Array, timeoutMs: number): Promise<Frame> {
    const started = Date.now();
    await this.connectedWithin(timeoutMs);
    const left = timeoutMs - (Date.now() - started);
    if (left <= 0) throw new ConnectionError(`connect to ${this.address} took all of ${timeoutMs} ms`);
    timeoutMs = left;
    const s = this.socket;
    if (!s || s.destroyed) throw new ConnectionError(`connection to ${this.address} closed`); // between connect and now

    const pending = this.pending;
    const id = this.nextId;
    this.nextId = this.nextId >= 0xffff_fffe ? 1 : this.nextId + 1;
    const heardBefore = this.chunksHeard;
    return new Promise<Frame>((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        // Nothing at all arrived since this request left: the path may be dead for good (a healed
        // partition can leave the old connection stuck; a firewall may drop its packets as
        // INVALID). Start the next request on a new connection rather than wait on this one.
        if (this.chunksHeard === heardBefore && this.socket === s) this.replace();
        reject(new ConnectionError(`no answer from ${this.address} within ${timeoutMs} ms`, true));
      }, timeoutMs);
      pending.set(id, {
        resolve: (f) => {
          clearTimeout(timer);
          resolve(f);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      coalesce(s);
      s.write(encode(id));
    });
  }

  /** Ends the connection for good: requests waiting on it (or on its connect) fail at once, later ones are refused. */
  close(): void {
    this.closed = true;
    // With an error, so a connect still under way fails too (and clears its timer).
    this.socket?.destroy(new ConnectionError(`connection to ${this.address} closed`));
    this.socket = undefined;
    this.connecting = undefined;
  }

  /** Drops the current socket (requests still waiting on it fail: they may have been sent); the next request connects anew. */
  private replace(): void {
    this.socket?.destroy();
    this.socket = undefined;
    this.connecting = undefined;
  }

  /** Connected, or a ConnectionError (not sent) once `timeoutMs` passed, even waiting on another request's connect. */
  private connectedWithin(timeoutMs: number): Promise<void> {
    const connecting = this.ensureConnected(timeoutMs);
    if (!this.connecting) return connecting;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new ConnectionError(`connect to ${this.address} timed out`)), timeoutMs);
      connecting.then(
        () => {
          clearTimeout(timer);
          resolve();
        },
        (e: unknown) => {
          clearTimeout(timer);
          reject(e);
        },
      );
    });
  }

  private ensureConnected(timeoutMs: number): Promise<void> {
    if (this.closed) return Promise.reject(new ConnectionError(`connection to ${this.address} closed`));
    if (this.socket && !this.socket.destroyed && !this.connecting) return Promise.resolve();
    if (this.connecting) return this.connecting;
    const [host, port] = splitAddress(this.address);
    const s = net.connect({ host, port, noDelay: true });
    this.socket = s;
    // Requests waiting on this socket: when it closes, they fail, not those of a socket after it.
    const pending = new Map<number, Pending>();
    this.pending = pending;
    const decoder = new FrameDecoder();
    s.on('data', (chunk: Buffer) => {
      this.chunksHeard++;
      decoder.push(chunk);
      try {
        for (let f = decoder.read(); f !== null; f = decoder.read()) {
          const p = pending.get(f.requestId);
          if (!p) continue;
          pending.delete(f.requestId);
          p.resolve(f);
        }
      } catch (e) {
        s.destroy(e as Error);
      }
    });
    s.on('close', () => {
      if (this.socket === s) this.socket = undefined;
      const err = new ConnectionError(`connection to ${this.address} closed`, true);
      for (const p of pending.values()) p.reject(err);
      pending.clear();
    });
    this.connecting = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => s.destroy(new ConnectionError(`connect to ${this.address} timed out`)), timeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        this.connecting = undefined;
        resolve();
      });
      s.once('error', (e) => {
        clearTimeout(timer);
        this.connecting = undefined;
        reject(new ConnectionError(`cannot reach ${this.address}: ${e.message}`));
      });
    });
    s.on('error', () => {});
    return this.connecting;
  }
}
