// A socket that speaks frames: decodes what arrives, coalesces what leaves (one writev per
// event-loop turn), watches for slow-loris senders, holds its input while the peer does not read
// its answers or its owner asks (back-pressure), and tells its owner when a peer that half-closed
// has had every frame dispatched. Shared by client connections and inbound replica links.
import type net from 'node:net';
import { FrameDecoder, FramingError, type Frame } from '../wire/index.ts';
import { coalesce } from './coalesce.ts';

/** Unsent answer bytes at which a connection that stopped reading is dropped (maxUnsentBytes). */
export const MAX_UNSENT_BYTES = 256 << 20;

export interface FrameSocketOptions {
  /** A frame must be complete within this many ms of its first byte. */
  partialFrameTimeoutMs?: number;
  /** Stop reading while this many response bytes wait in the socket buffer. */
  maxPendingWriteBytes?: number;
  /**
   * Drop the connection once this many bytes wait unsent: a peer that stopped reading while its
   * requests already running kept answering (up to the in-flight bound, each answer up to a value
   * of 1 MiB) would otherwise hold gigabytes of this process, which serves every hosted group.
   */
  maxUnsentBytes?: number;
  maxFrameBytes?: number;
}

/** Why input is held: the peer is not reading (`writes`), or a reason of the owner's. */
export type HoldReason = 'writes' | 'inFlight';

export class FrameSocket {
  readonly socket: net.Socket;
  readonly decoder: FrameDecoder;
  /** When the frame still incomplete began to arrive (0: none is). */
  private partialSince = 0;
  private readonly partialMs: number;
  /** Fires when the incomplete frame has taken partialMs: a real timer, not the socket's idle one. */
  private partialTimer: NodeJS.Timeout | undefined;
  /**
   * One held state for every reason: input resumes only once no reason is left. Held means no
   * frame is dispatched, not only that no chunk is read: the frames of a chunk already read stay
   * in the decoder (a 64 KiB chunk holds ~3,000 small requests).
   */
  private readonly holds = new Set<HoldReason>();
  private dispatching = false;
  /** The peer sent its last byte ('end'). */
  private ended = false;
  /** Dispatch stopped on a hold with input left, which may hold complete frames. */
  private heldInput = false;
  private readonly maxPendingWriteBytes: number;
  private readonly maxUnsentBytes: number;
  onFrame: (f: Frame) => void = () => {};
  onFramingError: (e: FramingError) => void = () => this.socket.destroy();
  /**
   * The peer sent its last byte (it may still read: a half-close) and every complete frame it sent
   * was dispatched; an incomplete last frame is dropped. May be called again after later
   * dispatches. Default: close our side too, as Node does itself without allowHalfOpen.
   */
  onInputDone: () => void = () => this.socket.end();

  constructor(socket: net.Socket, opts: FrameSocketOptions = {}, decoder?: FrameDecoder) {
    this.socket = socket;
    this.decoder = decoder ?? new FrameDecoder({ maxFrameBytes: opts.maxFrameBytes });
    this.maxPendingWriteBytes = opts.maxPendingWriteBytes ?? 16 << 20;
    this.maxUnsentBytes = opts.maxUnsentBytes ?? MAX_UNSENT_BYTES;
    this.partialMs = opts.partialFrameTimeoutMs ?? 30_000;
    socket.setNoDelay(true);
    // Not socket.setTimeout: that is an idle timer, which a byte every few seconds keeps from ever
    // firing, and which fires once per idle spell (found in review, 2026-12-07).
    socket.once('close', () => clearTimeout(this.partialTimer));
    socket.on('drain', () => this.release('writes'));
  }

  /** Whether input is held (for any reason). */
  get held(): boolean {
    return this.holds.size > 0;
  }

  /** The peer ended its input and every complete frame of it was dispatched. */
  get inputDone(): boolean {
    return this.ended && !this.heldInput;
  }

  /** Stops reading and dispatching for `reason` until release(reason). */
  hold(reason: HoldReason): void {
    if (this.holds.has(reason)) return;
    this.holds.add(reason);
    if (this.holds.size === 1) this.socket.pause();
  }

  /** Drops `reason`; once none is left, dispatches the frames held back and reads again. */
  release(reason: HoldReason): void {
    if (!this.holds.delete(reason) || this.holds.size > 0) return;
    this.socket.resume();
    this.dispatch();
  }

  /** Feeds bytes (e.g. what was read before this object took over) and dispatches frames. */
  push(chunk: Uint8Array): void {
    this.decoder.push(chunk);
    this.dispatch();
  }

  private dispatch(): void {
    if (this.dispatching) return; // a hold released from inside onFrame: the loop below goes on
    this.dispatching = true;
    let completed = false;
    try {
      while (!this.held) {
        const f = this.decoder.read();
        if (f === null) break;
        completed = true;
        this.onFrame(f);
        if (this.socket.destroyed) return;
      }
    } catch (e) {
      if (e instanceof FramingError) this.onFramingError(e);
      else throw e;
      return;
    } finally {
      this.dispatching = false;
    }
    this.heldInput = this.held && this.decoder.bufferedBytes > 0;
    // A partial frame is timed only while we read: a held socket cannot receive its rest, an
    // ended one never will (it is dropped).
    // A frame that completed ends the wait: what is left is the start of the next one.
    const partial = !this.held && !this.ended && this.decoder.bufferedBytes > 0;
    this.partialSince = partial ? (completed || this.partialSince === 0 ? Date.now() : this.partialSince) : 0;
    this.timePartial();
    if (this.ended && !this.heldInput) this.onInputDone();
  }

  /** Drops the connection once a frame has stayed incomplete for partialMs (slow loris). */
  private timePartial(): void {
    if (this.partialSince === 0) {
      clearTimeout(this.partialTimer);
      this.partialTimer = undefined;
      return;
    }
    if (this.partialTimer) return; // it re-arms itself for the current frame when it fires
    this.partialTimer = setTimeout(() => {
      this.partialTimer = undefined;
      if (this.partialSince === 0 || this.socket.destroyed) return;
      if (Date.now() - this.partialSince >= this.partialMs) this.socket.destroy();
      else this.timePartial();
    }, Math.max(0, this.partialSince + this.partialMs - Date.now()));
  }

  listen(): void {
    this.socket.on('data', (chunk: Buffer) => this.push(chunk));
    this.socket.on('end', () => {
      this.ended = true;
      this.dispatch();
    });
  }

  write(frame: Uint8Array): void {
    const s = this.socket;
    if (s.destroyed) return;
    coalesce(s);
    s.write(frame);
    if (s.writableLength > this.maxUnsentBytes) s.destroy();
    else if (s.writableLength > this.maxPendingWriteBytes) this.hold('writes');
  }
}
