// A socket that speaks frames: decodes what arrives, coalesces what leaves (one writev per
// event-loop turn), watches for slow-loris senders, and pauses reading when the peer does not read
// its answers (back-pressure). Shared by client connections and inbound replica links.
import type net from 'node:net';
import { FrameDecoder, FramingError, type Frame } from '../wire/index.ts';
import { coalesce } from './coalesce.ts';

export interface FrameSocketOptions {
  /** A frame must be complete within this many ms of its first byte. */
  partialFrameTimeoutMs?: number;
  /** Stop reading while this many response bytes wait in the socket buffer. */
  maxPendingWriteBytes?: number;
  maxFrameBytes?: number;
}

export class FrameSocket {
  readonly socket: net.Socket;
  readonly decoder: FrameDecoder;
  private partialSince = 0;
  private pausedForWrites = false;
  private readonly maxPendingWriteBytes: number;
  onFrame: (f: Frame) => void = () => {};
  onFramingError: (e: FramingError) => void = () => this.socket.destroy();

  constructor(socket: net.Socket, opts: FrameSocketOptions = {}, decoder?: FrameDecoder) {
    this.socket = socket;
    this.decoder = decoder ?? new FrameDecoder({ maxFrameBytes: opts.maxFrameBytes });
    this.maxPendingWriteBytes = opts.maxPendingWriteBytes ?? 16 << 20;
    const partialMs = opts.partialFrameTimeoutMs ?? 30_000;
    socket.setNoDelay(true);
    socket.setTimeout(Math.max(1000, partialMs / 3), () => {
      if (this.partialSince !== 0 && Date.now() - this.partialSince > partialMs) socket.destroy();
    });
    socket.on('drain', () => {
      if (this.pausedForWrites) {
        this.pausedForWrites = false;
        socket.resume();
      }
    });
  }

  /** Feeds bytes (e.g. what was read before this object took over) and dispatches frames. */
  push(chunk: Uint8Array): void {
    this.decoder.push(chunk);
    try {
      for (let f = this.decoder.read(); f !== null; f = this.decoder.read()) {
        this.onFrame(f);
        if (this.socket.destroyed) return;
      }
    } catch (e) {
      if (e instanceof FramingError) this.onFramingError(e);
      else throw e;
      return;
    }
    this.partialSince = this.decoder.bufferedBytes > 0 ? this.partialSince || Date.now() : 0;
  }

  listen(): void {
    this.socket.on('data', (chunk: Buffer) => this.push(chunk));
  }

  write(frame: Uint8Array): void {
    const s = this.socket;
    if (s.destroyed) return;
    coalesce(s);
    s.write(frame);
    if (!this.pausedForWrites && s.writableLength > this.maxPendingWriteBytes) {
      this.pausedForWrites = true;
      s.pause();
    }
  }
}
