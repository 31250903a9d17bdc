// The native protocol over a message transport (WebSocket): the same frames and the same handling
// as the TCP door (native-door.ts), but the transport cannot be paused, so back-pressure is ours:
//
// - While the transport holds more than `softBufferedBytes` of unsent responses, or `maxInFlight`
//   requests are running, no new request is taken from the input; it waits, decoded lazily.
// - Input that waits is bounded (`maxParkedBytes`): a client that keeps sending without reading
//   its answers is closed (1008), rather than growing our memory. The bound counts what the input
//   costs, not only its bytes: each message queued separately is charged CHUNK_COST more (the
//   decoder copies runs of small messages together, so only a client that mixes tiny and large
//   messages pays much of it).
//
// Message boundaries mean nothing: payloads feed one stream decoder, and responses finished in the
// same event-loop turn leave as one message.
import {
  BadRequestError,
  DEFAULT_MAX_FRAME_BYTES,
  FrameDecoder,
  FramingError,
  MAX_BATCH_OPS,
  decodeRequest,
  encodeResponse,
  frameClass,
  type Frame,
  type Response,
} from '../wire/index.ts';
import type { Executor } from './door-context.ts';

export interface NativeSink {
  send(bytes: Uint8Array): void;
  /** Bytes accepted by send() and not yet written to the network. */
  bufferedAmount(): number;
  close(code: number, reason: string): void;
}

export interface NativeStreamOptions {
  maxInFlight?: number;
  softBufferedBytes?: number;
  maxParkedBytes?: number;
  maxFrameBytes?: number;
  /** A frame still incomplete this long after its first byte closes the connection (default PARTIAL_FRAME_TIMEOUT_MS). */
  partialFrameTimeoutMs?: number;
  /** One request answered: op, seconds, outcome ('ok' or an error code). */
  observe?: (op: string, seconds: number, outcome: string) => void;
}

/** What one queued message costs besides its bytes (objects, backing store), charged to the bound. */
export const CHUNK_COST = 512;

/**
 * As on the native TCP door (frame-socket.ts): a frame must be complete within 30 s of its first
 * byte. WebSocket pings keep a connection from uWS's idle timeout, so without this a client whose
 * library answers pings held a partial frame for good (uWS also merges a data frame sent inside a
 * fragmented message into that message, where the RFC says to fail the connection: such a
 * connection sat unanswered until the idle timeout).
 */
export const PARTIAL_FRAME_TIMEOUT_MS = 30_000;

export const WS_CLOSE = { protocolError: 1002, unsupportedData: 1003, policyViolation: 1008, tooBig: 1009 } as const;

export class NativeStream {
  private readonly decoder: FrameDecoder;
  private readonly maxInFlight: number;
  private readonly softBufferedBytes: number;
  private readonly maxParkedBytes: number;
  private inFlight = 0;
  private closed = false;
  private out: Uint8Array[] = [];
  private flushScheduled = false;
  /** How often input was held back for back-pressure (tests, metrics). */
  pauses = 0;
  private holding = false;
  /** Framing was lost: nothing more is read; closed (1002) once the requests before it are answered. */
  private framingLost = false;
  /** When the frame still incomplete began to arrive (0: none is); timed only while input is read. */
  private partialSince = 0;
  private partialTimer: NodeJS.Timeout | undefined;
  private readonly partialMs: number;

  constructor(
    private readonly executor: Executor,
    private readonly sink: NativeSink,
    private readonly opts: NativeStreamOptions = {},
  ) {
    this.decoder = new FrameDecoder({ maxFrameBytes: opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES });
    this.maxInFlight = opts.maxInFlight ?? 1024;
    this.softBufferedBytes = opts.softBufferedBytes ?? 1 << 20;
    this.maxParkedBytes = opts.maxParkedBytes ?? 2 * DEFAULT_MAX_FRAME_BYTES;
    this.partialMs = opts.partialFrameTimeoutMs ?? PARTIAL_FRAME_TIMEOUT_MS;
  }

  /** A message's payload. It must be ours to keep (uWS's message buffer is not: copy it first). */
  push(bytes: Uint8Array): void {
    if (this.closed) return;
    this.decoder.push(bytes);
    this.pump();
    if (!this.closed && this.parkedCost() > this.maxParkedBytes) {
      this.shut(WS_CLOSE.policyViolation, 'too much unread input: read your responses');
    }
  }

  /** What the input held costs: its bytes, and CHUNK_COST per chunk queued in the decoder. */
  parkedCost(): number {
    return this.decoder.bufferedBytes + this.decoder.queuedChunks * CHUNK_COST;
  }

  /** The transport drained some of its buffer. */
  drained(): void {
    this.pump();
  }

  /** The transport is gone: stop, drop answers still to come. */
  close(): void {
    this.closed = true;
    this.out = [];
    this.timePartial(false, false);
  }

  private shut(code: number, reason: string): void {
    this.flush();
    this.closed = true;
    this.timePartial(false, false);
    this.sink.close(code, reason);
  }

  private pump(): void {
    let completed = false;
    while (!this.closed) {
      if (this.framingLost) {
        this.timePartial(false, false);
        if (this.inFlight === 0) this.shut(WS_CLOSE.protocolError, 'framing lost');
        return;
      }
      if (this.inFlight >= this.maxInFlight || this.sink.bufferedAmount() > this.softBufferedBytes) {
        if (!this.holding) {
          this.holding = true;
          this.pauses++;
        }
        // Held input is not read, so a frame in it is not late: its wait starts again once read.
        this.timePartial(false, false);
        return;
      }
      this.holding = false;
      let f: Frame | null;
      try {
        f = this.decoder.read();
      } catch (e) {
        if (!(e instanceof FramingError)) throw e;
        // The requests before the bad prefix still get their answers, as on the TCP door.
        this.framingLost = true;
        this.reply(0, { kind: 'error', error: { code: 'BAD_REQUEST', message: `${e.message}; closing the connection` } });
        continue;
      }
      if (f === null) {
        this.timePartial(this.decoder.bufferedBytes > 0, completed);
        return;
      }
      completed = true;
      this.handle(f);
    }
  }

  /**
   * Times the incomplete frame in the input, if any (`partial`); one that completed (`completed`)
   * ends the wait, and what is left is the start of the next frame. One timer per connection,
   * re-armed when it fires early, so a byte now and then does not keep a frame alive.
   */
  private timePartial(partial: boolean, completed: boolean): void {
    this.partialSince = partial ? (completed || this.partialSince === 0 ? Date.now() : this.partialSince) : 0;
    if (this.partialSince === 0) {
      clearTimeout(this.partialTimer);
      this.partialTimer = undefined;
      return;
    }
    if (this.partialTimer) return;
    this.partialTimer = setTimeout(() => {
      this.partialTimer = undefined;
      if (this.partialSince === 0 || this.closed) return;
      if (Date.now() - this.partialSince >= this.partialMs) this.shut(WS_CLOSE.policyViolation, `a frame stayed incomplete for ${this.partialMs / 1000} s`);
      else this.timePartial(true, false);
    }, Math.max(0, this.partialSince + this.partialMs - Date.now()));
    this.partialTimer.unref(); // the connection keeps the process alive, not its timer
  }

  private handle(f: Frame): void {
    if (frameClass(f.type) !== 'client') {
      this.reply(f.requestId, { kind: 'error', error: { code: 'BAD_REQUEST', message: `frame type 0x${f.type.toString(16)} is not a client request` } });
      return;
    }
    let req;
    try {
      req = decodeRequest(f.type, f.body, { maxBatchOps: MAX_BATCH_OPS });
    } catch (e) {
      if (!(e instanceof BadRequestError)) throw e;
      this.reply(f.requestId, { kind: 'error', error: { code: e.code, message: e.message } });
      return;
    }
    this.inFlight++;
    const started = performance.now();
    void this.executor.execute(req, { type: f.type, body: f.body, hops: 0 }).then(
      (res) => this.settle(f.requestId, req.op, started, res),
      (e: unknown) => this.settle(f.requestId, req.op, started, { kind: 'error', error: { code: 'UNAVAILABLE', message: e instanceof Error ? e.message : String(e) } }),
    );
  }

  private settle(requestId: number, op: string, started: number, res: Response): void {
    this.inFlight--;
    this.opts.observe?.(op, (performance.now() - started) / 1000, res.kind === 'error' ? res.error.code : 'ok');
    this.reply(requestId, res);
    this.pump();
  }

  private reply(requestId: number, res: Response): void {
    if (this.closed) return;
    this.out.push(encodeResponse(requestId, res));
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.closed || this.out.length === 0) return;
    const bytes = this.out.length === 1 ? this.out[0]! : Buffer.concat(this.out);
    this.out = [];
    this.sink.send(bytes);
  }
}
