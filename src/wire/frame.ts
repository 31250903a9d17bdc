// The one framing: [u32 length][u8 type][u32 requestId][body], big-endian. `length` counts what
// follows it (type + requestId + body = 5 + body bytes), so a reader needs the 4-byte prefix only
// to know how much more to wait for, and the same prefix check rejects absurd sizes up front.

import { Writer } from './bytes.ts';
import { FramingError } from './errors.ts';

export const LENGTH_BYTES = 4;
/** length + type + requestId. */
export const HEADER_BYTES = 9;
/** Smallest legal value of the length field: type + requestId, empty body. */
export const MIN_LENGTH = 5;

/**
 * Largest frame on the wire, prefix included. 4 MiB carries a batch of a few 1 MiB values; the
 * extra 64 KiB is headroom for keys, per-op overhead and the Raft/forward envelopes around such a
 * batch, so a request that fits the client limit also fits once replicated.
 */
export const DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024 + 64 * 1024;

export interface Frame {
  type: number;
  requestId: number;
  /** May be a view into the chunk it arrived in: copy it before keeping it past borrowed memory. */
  body: Uint8Array;
}

export interface FrameHeader {
  /** The length field: 5 + body bytes. */
  length: number;
  type: number;
  requestId: number;
}

/** A Writer over a fresh frame of `bodyBytes`, header filled in, positioned at the body. */
export function allocFrame(type: number, requestId: number, bodyBytes: number): Writer {
  if (!(type > 0 && type <= 0xff && Number.isInteger(type))) throw new RangeError(`frame type ${type}`);
  if (requestId >>> 0 !== requestId) throw new RangeError(`request id ${requestId} is not a u32`);
  const w = new Writer(Buffer.allocUnsafe(HEADER_BYTES + bodyBytes));
  w.u32(MIN_LENGTH + bodyBytes);
  w.u8(type);
  w.u32(requestId);
  return w;
}

/** Returns the frame a codec filled; a size mismatch is a codec bug, caught here not on the wire. */
export function finishFrame(w: Writer): Buffer {
  if (w.pos !== w.buf.length) throw new Error(`codec bug: wrote ${w.pos} of ${w.buf.length} frame bytes`);
  return w.buf;
}

export function encodeFrame(type: number, requestId: number, body: Uint8Array): Buffer {
  const w = allocFrame(type, requestId, body.length);
  w.raw(body);
  return w.buf;
}

/** Reads a header at `offset`, or null when fewer than HEADER_BYTES are there (tracer use). */
export function readFrameHeader(bytes: Uint8Array, offset = 0): FrameHeader | null {
  if (bytes.length - offset < HEADER_BYTES) return null;
  return { length: u32At(bytes, offset), type: bytes[offset + 4]!, requestId: u32At(bytes, offset + 5) };
}

function u32At(b: Uint8Array, p: number): number {
  return b[p]! * 0x100_0000 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
}

export interface FrameDecoderOptions {
  /** Largest accepted frame, prefix included. */
  maxFrameBytes?: number;
}

/**
 * Turns a byte stream cut at arbitrary points into frames. Usage:
 *   decoder.push(chunk); for (let f; (f = decoder.read()) !== null; ) handle(f);
 * A frame lying inside one chunk is returned as a view of it (no copy); a frame straddling chunks
 * is copied once. Incoming chunks are queued, so a huge length prefix allocates nothing: it is
 * rejected as soon as its 4 bytes are in. Small chunks are the exception: each one queued costs far
 * more memory than its bytes (objects, backing store), so a run of SMALL_RUN small chunks is copied
 * into one block (BLOCK_BYTES) and later small chunks are appended to it while it is the last one
 * queued: a stream cut into 1-byte pieces costs about its own size, not hundreds of times that.
 * Streams of ordinary (socket-sized) chunks never reach a block and stay zero-copy.
 */
export class FrameDecoder {
  readonly maxFrameBytes: number;
  private chunks: Uint8Array[] = [];
  private head = 0;
  private off = 0;
  private buffered = 0;
  private broken: FramingError | null = null;
  /** Trailing queued chunks under SMALL_CHUNK bytes, not (yet) copied into a block. */
  private run = 0;
  /** The block small chunks are copied into, and the view of it queued as a chunk (while it is). */
  private block: Uint8Array = EMPTY;
  private blockView: Uint8Array = EMPTY;

  constructor(opts: FrameDecoderOptions = {}) {
    this.maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    if (!(this.maxFrameBytes >= HEADER_BYTES)) throw new RangeError('maxFrameBytes below the header size');
  }

  /** Bytes received and not yet returned as frames. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /** Chunks queued: what the memory held costs beyond bufferedBytes (one object and store each). */
  get queuedChunks(): number {
    return this.chunks.length - this.head;
  }

  push(chunk: Uint8Array): void {
    // Once framing is lost the rest of the stream is noise; keep nothing of it.
    if (this.broken !== null || chunk.length === 0) return;
    this.buffered += chunk.length;
    if (chunk.length >= SMALL_CHUNK) {
      this.chunks.push(chunk);
      this.run = 0;
      return;
    }
    const last = this.chunks.length - 1;
    if (last >= this.head && this.blockView.length > 0 && this.chunks[last] === this.blockView) {
      // Small chunks are arriving: copy into the block, or a fresh one once it is full.
      this.appendToBlock(last, [chunk], chunk.length);
      return;
    }
    this.chunks.push(chunk);
    if (++this.run >= SMALL_RUN) this.compactRun();
  }

  /** Copies the trailing run of small chunks (never the head one: it may be part read) into a block. */
  private compactRun(): void {
    const from = Math.max(this.chunks.length - this.run, this.head + 1);
    this.run = 0;
    if (this.chunks.length - from < 2) return;
    const parts = this.chunks.slice(from);
    let n = 0;
    for (const p of parts) n += p.length;
    this.chunks.length = from;
    const prev = from - 1;
    if (prev >= this.head && this.blockView.length > 0 && this.chunks[prev] === this.blockView) this.appendToBlock(prev, parts, n);
    else this.appendToBlock(-1, parts, n);
  }

  /**
   * Appends `parts` (n bytes) to the block queued at index `at` if it has room, else to a new block
   * pushed at the end. Bytes already in a block are never rewritten: frames handed out as views of
   * it stay valid.
   */
  private appendToBlock(at: number, parts: Uint8Array[], n: number): void {
    const view = this.blockView;
    const end = view.byteOffset + view.length - this.block.byteOffset;
    if (at >= 0 && end + n <= this.block.length) {
      let p = end;
      for (const c of parts) {
        this.block.set(c, p);
        p += c.length;
      }
      this.blockView = this.block.subarray(view.byteOffset - this.block.byteOffset, p);
      this.chunks[at] = this.blockView;
      return;
    }
    this.block = Buffer.allocUnsafeSlow(Math.max(BLOCK_BYTES, n));
    let p = 0;
    for (const c of parts) {
      this.block.set(c, p);
      p += c.length;
    }
    this.blockView = this.block.subarray(0, p);
    this.chunks.push(this.blockView);
  }

  /** The next complete frame, or null until more bytes arrive. Throws FramingError (for good). */
  read(): Frame | null {
    if (this.broken !== null) throw this.broken;
    if (this.buffered < LENGTH_BYTES) return null;
    const length = this.peekLength();
    if (length < MIN_LENGTH || length > this.maxFrameBytes - LENGTH_BYTES) {
      this.broken = new FramingError(length < MIN_LENGTH ? 'FRAME_TOO_SHORT' : 'FRAME_TOO_LARGE', length, this.maxFrameBytes);
      this.chunks = [];
      this.head = this.off = this.buffered = this.run = 0;
      this.block = this.blockView = EMPTY;
      throw this.broken;
    }
    const total = LENGTH_BYTES + length;
    if (this.buffered < total) return null;

    let bytes: Uint8Array;
    let start: number;
    const first = this.chunks[this.head]!;
    if (first.length - this.off >= total) {
      bytes = first;
      start = this.off;
      this.skip(total);
    } else {
      bytes = this.take(total);
      start = 0;
    }
    return {
      type: bytes[start + 4]!,
      requestId: u32At(bytes, start + 5),
      body: bytes.subarray(start + HEADER_BYTES, start + total),
    };
  }

  /** The length prefix, which may itself straddle chunks. */
  private peekLength(): number {
    let v = 0;
    let i = this.head;
    let p = this.off;
    for (let n = 0; n < LENGTH_BYTES; n++) {
      let c = this.chunks[i]!;
      while (p >= c.length) {
        c = this.chunks[++i]!;
        p = 0;
      }
      v = v * 256 + c[p++]!;
    }
    return v;
  }

  private skip(n: number): void {
    this.buffered -= n;
    this.off += n;
    const first = this.chunks[this.head]!;
    if (this.off === first.length) this.dropHead();
  }

  /** Copies n bytes spread over several chunks into one fresh buffer. */
  private take(n: number): Uint8Array {
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[this.head]!;
      const k = Math.min(c.length - this.off, n - filled);
      out.set(c.subarray(this.off, this.off + k), filled);
      filled += k;
      this.off += k;
      if (this.off === c.length) this.dropHead();
    }
    this.buffered -= n;
    return out;
  }

  private dropHead(): void {
    this.chunks[this.head] = EMPTY; // release the chunk now, not at the next compaction
    this.head++;
    this.off = 0;
    this.run = Math.min(this.run, this.chunks.length - this.head);
    if (this.head === this.chunks.length) {
      this.chunks.length = 0;
      this.head = 0;
    } else if (this.head >= 64) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
  }
}

const EMPTY = new Uint8Array(0);
/** Chunks under this many bytes are worth copying together (each costs ~hundreds of bytes queued). */
const SMALL_CHUNK = 1024;
/** Small chunks queued in a row before they are copied into a block. */
const SMALL_RUN = 64;
const BLOCK_BYTES = 16 * 1024;
