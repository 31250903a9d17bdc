// Splits one flow's reassembled stream into frames `[u32 len BE][u8 type][u32 requestId BE][body]`.
//
// In sync it walks length prefixes; a gap inside a body is harmless (the next
// boundary is known from the length), a gap over a header or an implausible
// header loses sync. Out of sync it scans for a header whose length is sane
// and whose successor is too (or which ends exactly where the captured bytes
// end — senders write whole frames), then picks up from there.
import { DEFAULT_MAX_FRAME_BYTES } from '../wire/frame.ts';
import type { Flow, StreamEvent } from './reassembly.ts';

export const FRAME_HEADER_BYTES = 9;

/**
 * What the length field counts: 'rest' — everything after the length field
 * (type + requestId + body); 'body' — the body only; 'all' — the whole frame.
 */
export type LengthCovers = 'rest' | 'body' | 'all';

export interface FrameOptions {
  lengthCovers?: LengthCovers;
  /** Largest frame (whole, in bytes) accepted as plausible; default: the wire's limit. */
  maxFrameBytes?: number;
  /** Body bytes kept per frame. */
  maxBodyPrefix?: number;
  /** Extra plausibility check, e.g. "a type the codec knows"; default: any but 0x00, never valid. */
  isPlausibleType?: (type: number) => boolean;
  /** Bytes held while looking for a boundary before taking a lone candidate. */
  resyncWindow?: number;
  /** Headers in a row that must look sane to accept a boundary when out of sync. */
  resyncConfirm?: number;
}

export interface Frame {
  flow: Flow;
  /** Time of the segment that carried the frame's first byte. */
  ts: bigint;
  /** Stream offset of the frame's first byte. */
  offset: number;
  type: number;
  requestId: number;
  /** The length field as sent. */
  length: number;
  /** The first captured bytes of the body, at most maxBodyPrefix. */
  bodyPrefix: Uint8Array;
  /** bodyPrefix is shorter than it should be: a gap or the stream's end cut it. */
  truncated: boolean;
  /** First frame after the splitter found a boundary by scanning. */
  resynced: boolean;
}

export interface FrameStats {
  frames: number;
  truncatedFrames: number;
  resyncs: number;
  /** Captured bytes that could not be attributed to a frame. */
  undecodableBytes: number;
}

export function newFrameStats(): FrameStats {
  return { frames: 0, truncatedFrames: 0, resyncs: 0, undecodableBytes: 0 };
}

interface Current {
  ts: bigint;
  offset: number;
  type: number;
  requestId: number;
  length: number;
  bodyLeft: number;
  prefix: Uint8Array;
  fill: number;
  cut: boolean;
  resynced: boolean;
}

const OVERHEAD: Record<LengthCovers, number> = { rest: 4, body: FRAME_HEADER_BYTES, all: 0 };

export class FrameSplitter {
  private readonly overhead: number;
  private readonly minLength: number;
  private readonly maxLength: number;
  private readonly maxBodyPrefix: number;
  private readonly typeOk: (type: number) => boolean;
  private readonly resyncWindow: number;
  private readonly resyncConfirm: number;

  private synced = false;
  private nextResynced = false;
  // In sync: the partial header at hdrOffset, or the frame being read.
  private readonly hdr = new Uint8Array(FRAME_HEADER_BYTES);
  private hdrFill = 0;
  private hdrOffset = 0;
  private hdrTs = 0n;
  private cur: Current | undefined;
  // Out of sync: captured bytes from scanOffset on, being searched.
  private scan: Uint8Array = new Uint8Array(0);
  private scanOffset = 0;
  private scanTs = 0n;

  constructor(
    private readonly flow: Flow,
    private readonly onFrame: (f: Frame) => void,
    options: FrameOptions = {},
    readonly stats: FrameStats = newFrameStats(),
  ) {
    this.overhead = OVERHEAD[options.lengthCovers ?? 'rest'];
    this.minLength = FRAME_HEADER_BYTES - this.overhead;
    this.maxLength = (options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES) - this.overhead;
    this.maxBodyPrefix = options.maxBodyPrefix ?? 256;
    this.typeOk = options.isPlausibleType ?? ((type) => type !== 0);
    this.resyncWindow = options.resyncWindow ?? 64 * 1024;
    this.resyncConfirm = Math.max(1, options.resyncConfirm ?? 2);
  }

  push(e: StreamEvent): void {
    switch (e.kind) {
      case 'open':
        this.reset(e.aligned);
        break;
      case 'data':
        this.data(e.bytes, e.offset, e.ts);
        break;
      case 'gap':
        this.gap(e.length, e.offset + e.length);
        break;
      case 'close':
        this.endFrame();
        this.stats.undecodableBytes += this.hdrFill + this.scan.length;
        this.reset(false);
        break;
    }
  }

  private reset(aligned: boolean): void {
    this.synced = aligned;
    this.nextResynced = false;
    this.hdrFill = 0;
    this.cur = undefined;
    this.scan = new Uint8Array(0);
  }

  private data(bytes: Uint8Array, offset: number, ts: bigint): void {
    if (this.synced) this.feedSynced(bytes, offset, ts);
    else this.feedLost(bytes, offset, ts);
  }

  private feedSynced(bytes: Uint8Array, offset: number, ts: bigint): void {
    let i = 0;
    while (i < bytes.length) {
      const cur = this.cur;
      if (cur) {
        const take = Math.min(cur.bodyLeft, bytes.length - i);
        if (!cur.cut && cur.fill < cur.prefix.length) {
          const n = Math.min(take, cur.prefix.length - cur.fill);
          copy(cur.prefix, cur.fill, bytes, i, n);
          cur.fill += n;
        }
        cur.bodyLeft -= take;
        i += take;
        if (cur.bodyLeft === 0) this.endFrame();
        continue;
      }
      if (this.hdrFill === 0) {
        this.hdrOffset = offset + i;
        this.hdrTs = ts;
      }
      const n = Math.min(FRAME_HEADER_BYTES - this.hdrFill, bytes.length - i);
      copy(this.hdr, this.hdrFill, bytes, i, n);
      this.hdrFill += n;
      i += n;
      if (this.hdrFill < FRAME_HEADER_BYTES) continue;
      this.hdrFill = 0;
      if (!this.plausibleAt(this.hdr, 0)) {
        // Garbage where a header should be: search again from the next byte.
        this.stats.undecodableBytes += 1;
        this.synced = false;
        this.feedLost(concat(this.hdr.subarray(1), bytes.subarray(i)), this.hdrOffset + 1, this.hdrTs);
        return;
      }
      this.beginFrame(this.hdr, 0, this.hdrOffset, this.hdrTs);
    }
  }

  private beginFrame(b: Uint8Array, at: number, offset: number, ts: bigint): void {
    const length = readU32(b, at);
    const body = length + this.overhead - FRAME_HEADER_BYTES;
    this.cur = {
      ts,
      offset,
      type: b[at + 4] ?? 0,
      requestId: readU32(b, at + 5),
      length,
      bodyLeft: body,
      prefix: new Uint8Array(Math.min(body, this.maxBodyPrefix)),
      fill: 0,
      cut: false,
      resynced: this.nextResynced,
    };
    this.nextResynced = false;
    if (body === 0) this.endFrame();
  }

  private endFrame(): void {
    const cur = this.cur;
    if (!cur) return;
    this.cur = undefined;
    const truncated = cur.fill < cur.prefix.length;
    this.stats.frames++;
    if (truncated) this.stats.truncatedFrames++;
    this.onFrame({
      flow: this.flow,
      ts: cur.ts,
      offset: cur.offset,
      type: cur.type,
      requestId: cur.requestId,
      length: cur.length,
      bodyPrefix: cur.fill === cur.prefix.length ? cur.prefix : cur.prefix.subarray(0, cur.fill),
      truncated,
      resynced: cur.resynced,
    });
  }

  private gap(length: number, endOffset: number): void {
    if (!this.synced) {
      // Gaps end where a captured segment ends or begins; a chain of frames
      // that ends exactly there is as good as a confirmed one.
      const p = this.chainEndingAt(this.scan.length + length);
      if (p >= 0) {
        this.resyncAt(p);
        this.gap(length, endOffset);
        return;
      }
      this.stats.undecodableBytes += this.scan.length;
      this.scan = new Uint8Array(0);
      this.scanOffset = endOffset;
      return;
    }
    const cur = this.cur;
    if (cur && length <= cur.bodyLeft) {
      cur.bodyLeft -= length;
      cur.cut = true;
      if (cur.bodyLeft === 0) this.endFrame();
      return;
    }
    if (cur) {
      cur.cut = true;
      this.endFrame();
    }
    // The gap covers (part of) a header: the next boundary is unknown.
    this.stats.undecodableBytes += this.hdrFill;
    this.hdrFill = 0;
    this.synced = false;
    this.scan = new Uint8Array(0);
    this.scanOffset = endOffset;
  }

  private feedLost(bytes: Uint8Array, offset: number, ts: bigint): void {
    if (this.scan.length === 0) this.scanOffset = offset;
    this.scan = this.scan.length === 0 ? bytes.slice() : concat(this.scan, bytes);
    this.scanTs = ts;
    const b = this.scan;
    // A confirmed chain wins over an earlier lone header whose frame runs past
    // the scanned bytes; that one is taken only once the window is full.
    let waiting = -1;
    let p = 0;
    for (; p + FRAME_HEADER_BYTES <= b.length; p++) {
      if (!this.plausibleAt(b, p)) continue;
      const verdict = this.chain(b, p);
      if (verdict === 'accept') return this.resyncAt(p);
      if (verdict === 'wait' && waiting < 0) waiting = p;
    }
    if (waiting >= 0 && b.length >= this.resyncWindow) return this.resyncAt(waiting);
    // Keep what might still start a frame: from the waiting candidate, or the tail a header could begin in.
    this.dropScanPrefix(waiting >= 0 ? waiting : Math.max(0, b.length - (FRAME_HEADER_BYTES - 1)));
  }

  private resyncAt(p: number): void {
    this.stats.undecodableBytes += p;
    this.stats.resyncs++;
    const rest = this.scan.subarray(p);
    const restOffset = this.scanOffset + p;
    this.scan = new Uint8Array(0);
    this.synced = true;
    this.nextResynced = true;
    this.feedSynced(rest, restOffset, this.scanTs);
  }

  /** Follows length prefixes from p while they stay inside the scanned bytes. */
  private chain(b: Uint8Array, p: number): 'accept' | 'reject' | 'wait' {
    let q = p;
    for (let seen = 0; ; ) {
      if (q === b.length && seen > 0) return 'accept';
      if (q + FRAME_HEADER_BYTES > b.length) return 'wait';
      if (!this.plausibleAt(b, q)) return 'reject';
      if (++seen >= this.resyncConfirm) return 'accept';
      q += readU32(b, q) + this.overhead;
    }
  }

  /** First p whose chain of plausible frames ends exactly at scan position `end`, or -1. */
  private chainEndingAt(end: number): number {
    const b = this.scan;
    for (let p = 0; p + FRAME_HEADER_BYTES <= b.length; p++) {
      for (let q = p; q + FRAME_HEADER_BYTES <= b.length && this.plausibleAt(b, q); ) {
        q += readU32(b, q) + this.overhead;
        if (q === end) return p;
      }
    }
    return -1;
  }

  private dropScanPrefix(n: number): void {
    if (n <= 0) return;
    this.stats.undecodableBytes += n;
    this.scan = this.scan.subarray(n);
    this.scanOffset += n;
  }

  private plausibleAt(b: Uint8Array, at: number): boolean {
    const length = readU32(b, at);
    return length >= this.minLength && length <= this.maxLength && this.typeOk(b[at + 4] ?? 0);
  }
}

function readU32(b: Uint8Array, at: number): number {
  return (((b[at] ?? 0) << 24) | ((b[at + 1] ?? 0) << 16) | ((b[at + 2] ?? 0) << 8) | (b[at + 3] ?? 0)) >>> 0;
}

// Short copies by hand: subarray() + set() costs more than the bytes for headers and prefixes.
function copy(dst: Uint8Array, at: number, src: Uint8Array, from: number, n: number): void {
  if (n > 64) {
    dst.set(src.subarray(from, from + n), at);
    return;
  }
  for (let k = 0; k < n; k++) dst[at + k] = src[from + k] as number;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
